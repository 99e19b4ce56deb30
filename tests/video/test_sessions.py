"""Multi-session models: the ``data_key`` forward keyword reaches the right session through every wrapper."""

import pytest
import torch
from torch import nn

from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel, EnsembleModel
from mei.reducers import MeanOverTime, build_reducer
from mei.targets.contrastive import ContrastiveObjective, GroupObjective
from mei.targets.video import correlation, video_config

from .models import SHAPE, TwoSessionModel, session_filters

FILTERS = session_filters()


def test_constrained_output_model_passes_the_session_key():
    model = TwoSessionModel(FILTERS)
    x = torch.randn(3, *SHAPE[1:])
    for key, filters in FILTERS.items():
        objective = ConstrainedOutputModel(model, 2, target_fn=MeanOverTime(), forward_kwargs={"data_key": key})
        expected = (x * filters[2]).flatten(1).sum(dim=1)
        assert torch.allclose(objective(x), expected, atol=1e-4)
    with pytest.raises(TypeError, match="needs data_key"):
        ConstrainedOutputModel(model, 0)(x)


def test_ensemble_passes_the_session_key_to_every_member_and_averages():
    doubled = {key: 2 * f for key, f in FILTERS.items()}
    ensemble = EnsembleModel(TwoSessionModel(FILTERS), TwoSessionModel(doubled))
    objective = ConstrainedOutputModel(ensemble, 1, target_fn=MeanOverTime(), forward_kwargs={"data_key": "session-b"})
    x = torch.randn(2, *SHAPE[1:])
    expected = 1.5 * (x * FILTERS["session-b"][1]).flatten(1).sum(dim=1)
    assert torch.allclose(objective(x), expected, atol=1e-4)


@pytest.mark.parametrize("key", ["session-a", "session-b"])
def test_each_data_key_gives_the_mei_of_that_sessions_unit(key):
    model = EnsembleModel(TwoSessionModel(FILTERS))
    objective = ConstrainedOutputModel(model, 0, target_fn=MeanOverTime(), forward_kwargs={"data_key": key})
    mei, _, _ = gradient_ascent(None, objective, video_config(shape=list(SHAPE), steps=30, lr=0.5, norm=5.0), 1)
    other = "session-b" if key == "session-a" else "session-a"
    assert correlation(mei, FILTERS[key][0]) >= 0.99
    assert abs(correlation(mei, FILTERS[other][0])) < 0.3


def test_contrastive_and_group_objectives_pass_the_session_key():
    model = TwoSessionModel(FILTERS)
    x = torch.randn(2, *SHAPE[1:])
    r = {k: torch.stack([(x * f[u]).flatten(1).sum(1) for u in range(3)], dim=1) for k, f in FILTERS.items()}
    contrast = ContrastiveObjective(model, 0, reducer=MeanOverTime(), forward_kwargs={"data_key": "session-b"})
    assert torch.allclose(contrast(x), r["session-b"][:, 0] - r["session-b"][:, 1:].mean(1), atol=1e-4)
    group = GroupObjective(model, [0, 2], reducer=MeanOverTime(), forward_kwargs={"data_key": "session-a"})
    assert torch.allclose(group(x), r["session-a"][:, [0, 2]].mean(1), atol=1e-4)


def test_inner_objective_passes_the_session_key_and_names_a_module_that_did_not_run():
    from mei.targets.layers import LayerObjective

    model = TwoSessionModel(FILTERS)
    x = torch.randn(2, *SHAPE[1:])
    chosen = LayerObjective(model, "readouts.session-b", channel=1, forward_kwargs={"data_key": "session-b"})
    assert torch.allclose(chosen(x), (x * FILTERS["session-b"][1]).flatten(1).sum(1), atol=1e-4)
    skipped = LayerObjective(model, "readouts.session-a", forward_kwargs={"data_key": "session-b"})
    with pytest.raises(RuntimeError, match="'readouts.session-a' was not called"):
        skipped(x)


class _Row:
    """Stands in for a table row of the objective templates (no database): unit, session, reducer."""

    def __init__(self, unit_dim):
        from mei.pipeline.objective_templates import ReducedObjectiveTemplate

        self.unit_dim = unit_dim
        self.reducer = ReducedObjectiveTemplate.reducer

    def build_reducer(self):
        return build_reducer(self.reducer)

    def neuron(self, key):
        return 2, "session-a", {"data_key": "session-a"}


@pytest.mark.parametrize("unit_dim", [1, -1])
def test_reduced_objective_template_builds_the_units_objective_for_either_output_layout(unit_dim):
    from mei.pipeline.objective_templates import ReducedObjectiveTemplate

    class TimeLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = TwoSessionModel(FILTERS)

        def forward(self, x, data_key):
            out = self.inner(x, data_key=data_key)
            return out if unit_dim == 1 else out.transpose(1, 2)

    objective = ReducedObjectiveTemplate.get_objective(_Row(unit_dim), TimeLast(), {"neuron_id": 102})
    x = torch.randn(2, *SHAPE[1:])
    assert torch.allclose(objective(x), (x * FILTERS["session-a"][2]).flatten(1).sum(1), atol=1e-4)
