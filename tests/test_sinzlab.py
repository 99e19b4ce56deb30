"""sinzlab/mei's contract at its own import paths (docs/sinzlab.md): each point with a real outcome."""

from __future__ import annotations

import pytest
import torch

from mei.domain import Input, State
from mei.initial import InitialGuessCreator, RandomNormal, create_initial
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.objectives import Objective
from mei.optimization import MEI, default_regularization, optimize
from mei.stoppers import NumIterations, OptimizationStopper
from mei.tracking import TrackedLog, Tracker

TARGET = torch.tensor([[-1.0, 1.0], [1.0, -1.0]])


def quadratic(x):
    """One value for the whole (2, 2) input: sinzlab's objectives may return a single float for any shape."""
    return -(TARGET - x).pow(2).sum()


class KeepsInputs(Objective):
    """An objective of a lab's that keeps the tensors it is given (as sinzlab's PostProcessedInputObjective)."""

    def compute(self, state):
        return state.post_processed_input, state.input_, state.transformed_input, state.grad


class KeepsStates(OptimizationStopper):
    def __init__(self, n):
        self.n, self.states = n, []

    def __call__(self, state):
        self.states.append(state)
        return state.i_iter + 1 >= self.n, None


def test_state_tensors_never_change_after_their_step():
    crop = lambda x, i: x[:, :1]  # noqa: E731 - a view of the input: the optimizer changes it in place
    mei = MEI(lambda t: -(t - 1).pow(2).sum(), torch.zeros(1, 3), lambda p: torch.optim.SGD(p, lr=0.1), transform=crop)
    tracker = Tracker(keep=KeepsInputs())
    optimize(mei, NumIterations(4), tracker)
    post, before, seen, grads = zip(*tracker.log["keep"]["values"], strict=True)
    assert len({id(p) for p in post}) == 4
    for i in range(3):
        assert torch.equal(post[i], before[i + 1])  # each step starts where the last one ended
        assert not torch.equal(post[i], post[i + 1])
        assert torch.equal(seen[i + 1], before[i + 1][:, :1])
    assert torch.equal(before[0], torch.zeros(1, 3))
    assert torch.equal(grads[0], torch.tensor([[-2.0, 0.0, 0.0]]))  # the gradient of the loss -(evaluation)


def test_states_kept_by_a_stopper_keep_their_values_and_compare_by_value():
    stopper = KeepsStates(3)
    mei = MEI(quadratic, torch.zeros(2, 2), lambda p: torch.optim.SGD(p, lr=0.1))
    optimize(mei, stopper)
    first, second = stopper.states[:2]
    assert torch.equal(first.input, torch.zeros(2, 2)) and first.input is first.input_
    assert torch.allclose(first.post_processed_input, 0.2 * TARGET) and torch.equal(first.post_processed_input,
                                                                                      second.input_)
    assert State.from_dict(first.to_dict()) == first and first != second
    assert first.to_dict()["post_processed_input"] is first.post_processed_input


def test_user_preconditioner_changing_the_gradient_in_place_leaves_state_grad_alone():
    def zero_corner(grad, i_iter):
        grad[0, 0] = 0.0
        return grad

    stopper = KeepsStates(2)
    mei = MEI(quadratic, torch.zeros(2, 2), lambda p: torch.optim.SGD(p, lr=0.1), precondition=zero_corner)
    optimize(mei, stopper)
    state = stopper.states[0]
    assert state.grad[0, 0] == 2.0 and state.preconditioned_grad[0, 0] == 0.0


def test_sinzlab_optimizer_instance_optimizes_its_tensor_and_converges():
    initial = torch.zeros(2, 2)
    mei = MEI(quadratic, initial, torch.optim.SGD([initial], lr=0.1))
    score, result = optimize(mei, NumIterations(100), Tracker())
    assert torch.allclose(result, TARGET) and score == pytest.approx(0.0)
    assert mei.regularization is default_regularization
    with pytest.raises(ValueError, match="exactly one tensor"):
        MEI(quadratic, initial, torch.optim.SGD([torch.zeros(2, 2), torch.zeros(1)], lr=0.1))


def test_objective_must_still_be_one_value_per_image_or_one_in_all():
    mei = MEI(lambda x: x.sum(1)[:1].repeat(3), torch.zeros(2, 2), lambda p: torch.optim.SGD(p, lr=0.1))
    with pytest.raises(ValueError, match=r"one scalar per input image \(2 here\) or one for the whole input"):
        mei.step()


class SinzlabRandom(InitialGuessCreator):
    def __call__(self, *shape):
        return torch.full(shape, float(len(shape)))


def test_initial_guesses_take_either_calling_convention():
    assert create_initial(SinzlabRandom(), (1, 2, 3)).shape == (1, 2, 3)
    assert create_initial(lambda shape: torch.zeros(shape), (1, 2)).shape == (1, 2)
    torch.manual_seed(0)
    assert torch.equal(RandomNormal()(1, 2, 3), (torch.manual_seed(0), RandomNormal()((1, 2, 3)))[1])
    assert repr(RandomNormal()) == "RandomNormal()" and issubclass(RandomNormal, InitialGuessCreator)


def test_input_wraps_the_tensor_and_clones_to_the_cpu():
    x = torch.zeros(2)
    wrapped = Input(x)
    assert wrapped.tensor is x and x.requires_grad
    (x * 3).sum().backward()
    assert torch.equal(wrapped.cloned_grad, torch.full((2,), 3.0)) and wrapped.cloned_grad is not x.grad
    assert wrapped.clone().tensor is not x and repr(wrapped).startswith("Input(tensor(")


CONFIG = {
    "device": "cpu", "shape": [1, 1, 4, 4],
    "initial": {"path": "mei.initial.RandomNormal"},
    "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 0.1}},
    "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 5}},
    "objectives": [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 2}}],
}


def linear_unit():
    torch.manual_seed(1)
    return ConstrainedOutputModel(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)), 1)


def test_output_is_keyed_by_the_dotted_path_and_still_found_by_class_name():
    _, _, output = gradient_ascent(None, linear_unit(), CONFIG, seed=3)
    assert list(output) == ["mei.objectives.EvaluationObjective"]
    assert output["EvaluationObjective"] is output["mei.objectives.EvaluationObjective"]
    assert output["EvaluationObjective"]["times"] == [0, 2, 4] and "EvaluationObjective" in output
    old = TrackedLog({"EvaluationObjective": {"times": [0]}})  # a stored row of an earlier version
    assert old["mei.objectives.EvaluationObjective"]["times"] == [0]
    with pytest.raises(KeyError):
        _ = old["mei.objectives.Other"]


def test_injected_collaborators_follow_sinzlabs_sequence_and_leave_the_global_rng_alone():
    calls = []

    def set_seed(seed):
        calls.append(("seed", seed))
        torch.manual_seed(seed)

    def get_dims(loaders):
        calls.append(("dims", sorted(loaders)))
        return {"session": {"inputs": (7, 1, 4, 4), "targets": (7, 3)}}

    class Recording(MEI):
        def __init__(self, func, initial, optimizer, **optional):
            calls.append(("mei", tuple(initial.shape), type(optimizer).__name__, sorted(optional)))
            super().__init__(func, initial, optimizer, **optional)

    config = {k: v for k, v in CONFIG.items() if k != "shape"}
    config["postprocessing"] = {"path": "mei.legacy.ops.ChangeNorm", "kwargs": {"norm": 1.0}}
    state = torch.get_rng_state()
    mei, score, log = gradient_ascent({"train": {"session": None}}, linear_unit(), config, 3, set_seed=set_seed,
                                      get_dims=get_dims, mei_class=Recording)
    assert torch.equal(torch.get_rng_state(), state)
    assert calls == [("seed", 3), ("dims", ["session"]), ("mei", (1, 1, 4, 4), "SGD", ["postprocessing"])]
    assert mei.shape == (1, 1, 4, 4) and torch.linalg.vector_norm(mei).item() == pytest.approx(1.0)
    assert log["mei.objectives.EvaluationObjective"]["times"] == [0, 2, 4] and isinstance(score, float)
    assert config == {**{k: v for k, v in CONFIG.items() if k != "shape"}, "postprocessing": config["postprocessing"]}


def test_featurevis_create_initial_guess_collaborator_makes_the_starting_input():
    calls = []

    def create_initial_guess(*shape, device):
        calls.append((shape, device))
        return torch.full(shape, 0.5, device=device)

    config = {k: v for k, v in CONFIG.items() if k != "initial"}  # no initial: the collaborator makes it
    config["stopper"] = {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 1}}
    config["optimizer"] = {"path": "torch.optim.SGD", "kwargs": {"lr": 0.0}}
    mei, score, _ = gradient_ascent(None, linear_unit(), config, 3, create_initial_guess=create_initial_guess)
    assert calls == [((1, 1, 4, 4), "cpu")] and torch.equal(mei, torch.full((1, 1, 4, 4), 0.5))
    assert score == pytest.approx(float(linear_unit()(mei)))


def test_dataloaders_do_not_move_the_callers_global_rng():
    data = torch.utils.data.TensorDataset(torch.zeros(8, 1, 4, 4), torch.zeros(8, 3))
    loaders = {"train": {"s": torch.utils.data.DataLoader(data, batch_size=4, shuffle=True)}}
    config = {k: v for k, v in CONFIG.items() if k != "shape"}
    state = torch.get_rng_state()
    mei, _, _ = gradient_ascent(loaders, linear_unit(), config, seed=3)
    assert mei.shape == (1, 1, 4, 4) and torch.equal(torch.get_rng_state(), state)


def test_constrained_output_model_takes_forward_kwargs_third_as_in_e91ef42():
    class Sessions(torch.nn.Module):
        def forward(self, x, data_key, pupil_center=None):
            return x * {"a": 1.0, "b": 2.0}[data_key] + (0 if pupil_center is None else pupil_center.sum())

    unit = ConstrainedOutputModel(Sessions(), 1, {"data_key": "b", "pupil_center": torch.ones(1, 2)})
    assert torch.equal(unit(torch.ones(1, 3)), torch.tensor([4.0]))
    assert unit.target_fn is None and unit.forward_kwargs["data_key"] == "b"
    with pytest.raises(TypeError, match="forward_kwargs twice"):
        ConstrainedOutputModel(Sessions(), 1, {"data_key": "a"}, forward_kwargs={"data_key": "b"})


class Shifted(torch.nn.Module):
    """Needs the forward kwargs of a neuralpredictors model with a shifter and behaviour inputs."""

    def forward(self, x, data_key, pupil_center, behavior):
        assert data_key == "s1" and pupil_center.shape == (1, 2) and behavior.shape == (1, 3)
        return x.flatten(1)[:, :3] * (1 + pupil_center.sum() + behavior.sum())


def test_sinzlabs_later_config_keys():
    from mei.engine.errors import ConfigError
    from mei.pipeline.generation import validate_method

    config = {**CONFIG, "n_meis": 3, "inhibitory": True,
              "model_forward_kwargs": {"pupil_center": [[0.5, 0.5]], "behavior": [[0.0, 1.0, 0.0]]}}
    unit = ConstrainedOutputModel(Shifted(), 1, forward_kwargs={"data_key": "s1"})
    mei, score, _ = gradient_ascent(None, unit, config, seed=3)
    assert mei.shape == (3, 1, 4, 4) and unit.forward_kwargs == {"data_key": "s1"}  # the model is not changed
    excitatory, high, _ = gradient_ascent(None, unit, {**config, "inhibitory": False}, seed=3)
    assert score < 0 < high and score == pytest.approx(float(3 * mei[:, 0, 0, 1].mean()), rel=1e-5)
    validate_method("mei.methods.gradient_ascent", config)
    for key, value, message in [("transparency", "yes", "must be true or false"), ("n_meis", 0, "must be >= 1"),
                                ("inhibitory", "yes", "must be true or false"),
                                ("transparency_weight", -1, "must be >= 0"),
                                ("background", {"path": "mei.legacy.ops.ChangeNorm", "kwargs": {"norm": 1}},
                                 "this slot takes background")]:
        with pytest.raises(ConfigError, match=message):
            validate_method("mei.methods.gradient_ascent", {**config, key: value})
