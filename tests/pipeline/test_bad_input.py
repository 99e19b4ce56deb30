"""Bad methods, configs and seeds: a clear error and no row written, at insert time and at populate time."""

from __future__ import annotations

import copy

import pytest

from mei.engine.resolve import ComponentNotAllowedError, ConfigError
from mei.main import MEIMethod, MEISeed, MEITemplate, TrainedEnsembleModelTemplate

from .lab_tables import METHOD_CONFIG, declare_lab, fill_upstream

GA = "mei.methods.gradient_ascent"


def _config(**changes):
    config = copy.deepcopy(METHOD_CONFIG)
    config.update(changes)
    return config


BAD_METHODS = [
    ("mei.methods.no_such_method", METHOD_CONFIG, ConfigError,
     "method_fn: 'mei.methods' has no attribute 'no_such_method'"),
    ("os.system", METHOD_CONFIG, ComponentNotAllowedError, "'os.system' is outside the allowed modules"),
    ("tests.pipeline.lab.PopulationModel.__init__", METHOD_CONFIG, ConfigError, "invalid part '__init__'"),
    (GA, _config(stopper={"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": -3}}),
     ConfigError, "stopper.kwargs"),
    (GA, _config(optimizer={"path": "torch.optim.SGD", "kwargs": {"lr": 0.1, "bogus": 1}}),
     ConfigError, "optimizer.kwargs"),
    (GA, {k: v for k, v in METHOD_CONFIG.items() if k != "stopper"}, ConfigError, "missing required config key"),
    (GA, _config(device="tpu"), ConfigError, "device: must be 'cpu' or 'cuda'"),
    (GA, _config(initial={"path": "mei.initial.RandomNormal", "kwargs": {"std": float("nan")}}),
     ConfigError, "not a finite number"),
    (GA, "not a dict", ConfigError, "method_config: must be a dict"),
    (GA, _config(stopper={"path": "subprocess.Popen", "kwargs": {}}), ComponentNotAllowedError, "stopper.path"),
    (GA, _config(initial={"path": "mei.fabrik.activate", "kwargs": {"schema_name": "x"}}), ComponentNotAllowedError,
     "'mei.fabrik.activate' is not a component: 'mei.fabrik' holds no components"),
    ("mei.main.MEIMethod", METHOD_CONFIG, ComponentNotAllowedError,
     "method_fn: 'mei.main.MEIMethod' is not a component"),
]


def test_add_method_rejects_and_writes_nothing(pipeline):
    for method_fn, config, error, message in BAD_METHODS:
        with pytest.raises(error) as raised:
            MEIMethod().add_method(method_fn, config, comment="bad")
        assert message in str(raised.value), (method_fn, config)
        assert len(MEIMethod()) == 0, (method_fn, config)


def test_add_method_is_idempotent_and_hash_ignores_key_order(pipeline):
    first = MEIMethod().add_method(GA, METHOD_CONFIG)
    reordered = dict(reversed(list(copy.deepcopy(METHOD_CONFIG).items())))
    assert MEIMethod().add_method(GA, reordered, comment="again") == first
    assert len(MEIMethod()) == 1


def test_custom_method_validator_is_called(pipeline):
    with pytest.raises(ConfigError, match="iter_n"):
        MEIMethod().add_method("mei.meitorch.methods.pixel_mei", {"iter_n": -1})
    assert len(MEIMethod()) == 0


def test_missing_seed_is_a_clear_error(pipeline):
    lab = declare_lab(pipeline.schema("lab"))
    fill_upstream(lab, n_models=1)
    lab.Objective().populate()
    method = MEIMethod().add_method(GA, METHOD_CONFIG)
    with pytest.raises(Exception, match="mei_seed"):
        MEISeed().insert1({})
    assert lab.MEI().populate()["success_count"] == 0  # no seed, nothing to generate
    key = {**lab.Objective.keys()[0], **lab.TrainedEnsembleModel.fetch1("KEY"), **method, "mei_seed": 5}
    with pytest.raises(Exception, match="exactly one|one tuple"):
        lab.MEI().make(key)
    assert len(lab.MEI()) == 0


def test_populate_revalidates_rows_written_by_other_means(pipeline):
    lab = declare_lab(pipeline.schema("lab"))
    fill_upstream(lab, n_models=1)
    lab.Objective().populate()
    MEISeed().insert1({"mei_seed": 1})
    bad = _config(stopper={"path": "builtins.exec", "kwargs": {}})
    MEIMethod().insert1({"method_fn": GA, "method_hash": "0" * 32, "method_config": bad})
    result = lab.MEI().populate(suppress_errors=True)
    assert result["success_count"] == 0
    assert len(result["error_list"]) == 3
    assert all("builtins.exec" in str(error) for _, error in result["error_list"])
    assert len(lab.MEI()) == 0


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_templates_without_their_tables_say_what_is_missing(pipeline):
    schema = pipeline.schema("lab")
    lab = declare_lab(schema)
    with pytest.raises(TypeError, match="Ensemble needs a trained_model_table class attribute"):
        schema(type("Ensemble", (TrainedEnsembleModelTemplate,), {}))
    with pytest.raises(TypeError, match="Meis needs an objective_table \\(or a selector_table\\)"):
        schema(type("Meis", (MEITemplate,), {"trained_model_table": lab.TrainedModel}))
    with pytest.raises(TypeError, match="Meis2 needs a trained_model_table"):
        schema(type("Meis2", (MEITemplate,), {"objective_table": lab.Objective}))


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
@pytest.mark.parametrize("batch_size", [None, 3])
def test_an_output_unit_out_of_range_names_the_row_and_the_valid_units(pipeline, batch_size):
    lab = declare_lab(pipeline.schema("lab"))
    fill_upstream(lab, n_models=1)
    lab.Objective().populate()
    key = lab.Objective.keys(order_by="neuron_id")[-1]
    lab.Objective.update1({**key, "output_unit": 7})  # the model has 3 units (0 to 2)
    MEIMethod().add_method(GA, METHOD_CONFIG)
    MEISeed().insert1({"mei_seed": 1})
    result = lab.MEI().populate(suppress_errors=True, batch_size=batch_size)
    assert result["success_count"] == (2 if batch_size is None else 0)
    messages = [str(error) for _, error in result["error_list"]]
    assert messages and all("7 is out of range: the model's output has 3 unit(s), valid units are 0 to 2" in m
                            for m in messages)
    if batch_size is None:  # one key per run: the message names the row that selected the unit
        assert messages == [f"UnitOutOfRangeError: Objective row {key}: its output unit 7 is out of range: the "
                            "model's output has 3 unit(s), valid units are 0 to 2"]
    assert len(lab.MEI()) == result["success_count"]
