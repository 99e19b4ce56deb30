"""The engine on a model with a known optimum: x -> -((t - x)**2).sum() is maximal at t."""

import pytest
import torch

from mei.methods import gradient_ascent
from mei.optimization import NonFiniteError
from tests.components import TARGET, NaNAfter, QuadraticModel, Recorder

SHAPE = list(TARGET.shape)


def config(steps=300, lr=0.1, **extra):
    return {
        "device": "cpu",
        "shape": SHAPE,
        "initial": {"path": "mei.initial.RandomNormal"},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": lr}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
        **extra,
    }


def run(cfg, model=None, seed=0):
    return gradient_ascent(None, model or QuadraticModel(), cfg, seed)


def test_reaches_the_known_optimum():
    mei, score, output = run(config())
    assert mei.shape == TARGET.shape
    assert torch.allclose(mei, TARGET, atol=1e-5)
    assert score == pytest.approx(0.0, abs=1e-8)
    assert output == {}


def test_minimize_still_pays_the_penalty():
    # At x = t = 1 the evaluation has zero gradient, so one step moves x by the penalty alone: minimizing
    # evaluation + |x|^2 must pull x towards 0 (x - lr * 2x = 0 with lr = 0.5), never push it away.
    cfg = config(steps=1, lr=0.5, minimize=True,
                 initial={"path": "mei.initial.Constant", "kwargs": {"value": 1.0}},
                 regularization={"path": "mei.regularizers.L2Norm", "kwargs": {"weight": 1.0, "power": True}})
    flat = QuadraticModel(torch.ones_like(TARGET))  # evaluation gradient is 0 at x = 1
    mei, _, _ = run(cfg, flat)
    assert torch.allclose(mei, torch.zeros_like(mei))  # the penalty pulled x towards 0: 1 - 0.5 * 2 * 1


def test_minimize_walks_away_from_the_maximum():
    mei, score, _ = run(config(steps=20, minimize=True))
    assert score < run(config(steps=20))[1]
    assert score < -50


@pytest.mark.usefixtures("allow_tests_modules")
def test_transform_moves_the_optimum_to_t_over_factor():
    mei, _, _ = run(config(transform={"path": "tests.components.Scale", "kwargs": {"factor": 2.0}}))
    assert torch.allclose(mei, TARGET / 2, atol=1e-5)


def test_squared_l2_regularizer_shrinks_optimum_to_t_over_1_plus_w():
    reg = {"path": "mei.regularizers.L2Norm", "kwargs": {"weight": 0.5, "power": True}}
    mei, score, _ = run(config(regularization=reg))
    assert torch.allclose(mei, TARGET / 1.5, atol=1e-5)
    # score is the model's evaluation only, without the penalty
    assert score == pytest.approx(-((TARGET - TARGET / 1.5) ** 2).sum().item(), rel=1e-4)


def test_l2_norm_regularizer_shortens_optimum_by_w_over_2():
    w = 1.0
    reg = {"path": "mei.regularizers.L2Norm", "kwargs": {"weight": w}}
    mei, _, _ = run(config(regularization=reg, steps=600))
    expected = TARGET * (1 - w / (2 * TARGET.norm()))
    assert torch.allclose(mei, expected, atol=1e-4)


def test_total_variation_smooths_the_optimum():
    checkerboard = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 - 0.5
    noisy = QuadraticModel(TARGET + checkerboard)
    tv = {"path": "mei.regularizers.TotalVariation", "kwargs": {"weight": 0.5}}
    plain, _, _ = run(config(), noisy)
    smooth, _, _ = run(config(regularization=tv, steps=1000, lr=0.01), noisy)

    def total_variation(x):
        return (x.diff(dim=-1).abs().sum() + x.diff(dim=-2).abs().sum()).item()

    assert total_variation(smooth) < 0.3 * total_variation(plain)
    assert smooth.mean().item() == pytest.approx(TARGET.mean().item(), abs=0.05)


@pytest.mark.parametrize("precondition", [
    {"path": "mei.preconditioners.FourierSmoothing", "kwargs": {"factor": 0.5}},
    {"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": 0.5, "padding": "circular"}},
])
def test_positive_preconditioners_keep_the_optimum(precondition):
    mei, _, _ = run(config(precondition=precondition, steps=3000, lr=0.2))
    assert torch.allclose(mei, TARGET, atol=1e-4)


@pytest.mark.usefixtures("allow_tests_modules")
def test_masking_preconditioner_freezes_masked_pixels_at_the_initial_value():
    initial = run(config(steps=1, lr=0.0))[0]
    mei, _, _ = run(config(precondition={"path": "tests.components.MaskGradient"}))
    assert torch.equal(mei[..., :4], initial[..., :4])
    assert torch.allclose(mei[..., 4:], TARGET[..., 4:], atol=1e-5)


def test_change_norm_projects_optimum_onto_the_sphere():
    post = {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": 2.0}}
    mei, _, _ = run(config(postprocessing=post))
    assert torch.allclose(mei, 2.0 * TARGET / TARGET.norm(), atol=1e-5)


def test_clip_range_clips_the_optimum():
    post = {"path": "mei.postprocessing.ClipRange", "kwargs": {"x_min": -0.5, "x_max": 0.25}}
    mei, _, _ = run(config(postprocessing=post))
    assert torch.allclose(mei, TARGET.clamp(-0.5, 0.25), atol=1e-5)


def test_change_std_fixes_the_standard_deviation():
    post = {"path": "mei.postprocessing.ChangeStd", "kwargs": {"std": 0.2}}
    mei, _, _ = run(config(postprocessing=post))
    centred = TARGET - TARGET.mean()
    expected = TARGET.mean() + 0.2 * centred / TARGET.flatten().std()
    assert torch.allclose(mei, expected, atol=1e-5)


def test_num_iterations_runs_exactly_n_steps_with_one_forward_each():
    model = QuadraticModel()
    run(config(steps=17), model)
    assert model.calls == 17 + 1  # one forward per step plus the final evaluation


@pytest.mark.usefixtures("allow_tests_modules")
def test_state_fields_describe_each_step():
    scale = {"path": "tests.components.Scale", "kwargs": {"factor": 2.0}}
    post = {"path": "mei.postprocessing.ClipRange", "kwargs": {"x_min": -0.9, "x_max": 0.9}}
    cfg = config(stopper={"path": "tests.components.Recorder", "kwargs": {"n": 5}}, transform=scale,
                 postprocessing=post, regularization={"path": "mei.regularizers.L1Norm", "kwargs": {"weight": 0.1}},
                 objectives=[{"path": "tests.components.StopperOutputObjective"}])
    _, _, output = run(cfg)
    assert output["StopperOutputObjective"]["values"] == [{"seen": i} for i in range(5)]
    states = Recorder.states
    assert [s["i_iter"] for s in states] == [0, 1, 2, 3, 4]
    for before, after in zip(states, states[1:], strict=False):  # consecutive pairs: one shorter by design
        assert torch.equal(after["input_"], before["post_processed_input"])
    for s in states:
        x, t = s["input_"], s["transformed_input"]
        assert torch.allclose(t, 2 * x)
        assert s["evaluation"] == pytest.approx(-((TARGET - t) ** 2).sum().item(), rel=1e-5)
        assert s["reg_term"] == pytest.approx(0.1 * t.abs().sum().item(), rel=1e-5)
        # gradient of the loss -(evaluation - reg): d/dx = 2 * (-2 (t_ - 2x)) + 0.1 * 2 * sign(2x)
        expected = -4 * (TARGET - t) + 0.2 * torch.sign(t)
        assert torch.allclose(s["grad"], expected, atol=1e-5)
        assert torch.equal(s["preconditioned_grad"], s["grad"])
        stepped = (x - 0.1 * s["grad"]).clamp(-0.9, 0.9)
        assert torch.allclose(s["post_processed_input"], stepped, atol=1e-6)


@pytest.mark.usefixtures("allow_tests_modules")
def test_custom_stopper_by_dotted_path():
    cfg = config(stopper={"path": "tests.components.EvaluationThreshold", "kwargs": {"threshold": -1.0}})
    model = QuadraticModel()
    _, score, _ = run(cfg, model)
    assert 2 < model.calls - 1 < 300
    assert score >= -1.0


def test_evaluation_plateau_stops_once_converged():
    stopper = {"path": "mei.stoppers.EvaluationPlateau", "kwargs": {"patience": 5, "min_delta": 1e-6,
                                                                    "max_iterations": 5000}}
    model = QuadraticModel()
    mei, _, _ = run(config(stopper=stopper), model)
    assert 20 < model.calls - 1 < 5000
    assert torch.allclose(mei, TARGET, atol=1e-2)


def test_tracker_records_evaluations_at_its_interval():
    objectives = [{"path": "mei.objectives.EvaluationObjective", "kwargs": {"interval": 10}},
                  {"path": "mei.objectives.PostProcessedInputObjective", "kwargs": {"interval": 20}}]
    mei, _, output = run(config(steps=35, objectives=objectives))
    evaluations = output["EvaluationObjective"]
    assert evaluations["times"] == [0, 10, 20, 30]
    assert all(isinstance(v, float) for v in evaluations["values"])
    assert evaluations["values"] == sorted(evaluations["values"])  # ascent
    inputs = output["PostProcessedInputObjective"]
    assert inputs["times"] == [0, 20]
    assert inputs["values"][0].shape == TARGET.shape


def test_same_seed_is_bit_identical_and_other_seeds_differ():
    cfg = config(steps=30, transform={"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 2}})
    a, b, c = run(cfg, seed=5)[0], run(cfg, seed=5)[0], run(cfg, seed=6)[0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_caller_rng_state_is_left_unchanged():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(config(steps=5, transform={"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 1}}))
    assert torch.equal(torch.rand(3), expected)


def test_input_shape_comes_from_the_first_training_batch():
    images = torch.zeros(10, 1, 8, 8)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(10, 3)), batch_size=4)
    cfg = config(steps=3)
    del cfg["shape"]
    mei, _, _ = gradient_ascent({"train": {"session-1": loader}}, QuadraticModel(), cfg, 0)
    assert mei.shape == (1, 1, 8, 8)


def test_missing_shape_and_dataloaders_is_a_clear_error():
    cfg = config()
    del cfg["shape"]
    with pytest.raises(ValueError, match="shape"):
        gradient_ascent(None, QuadraticModel(), cfg, 0)


def test_nan_evaluation_stops_with_the_step_named():
    with pytest.raises(NonFiniteError, match="step 3"):
        run(config(steps=20), NaNAfter(3))


def test_non_scalar_model_output_is_a_clear_error():
    with pytest.raises(ValueError, match="one scalar per input"):
        run(config(steps=2), torch.nn.Flatten())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA GPU") as error:
        run(config(device="cuda"))
    assert "accepts any 'cuda' device: it cannot know the machine that will run it" in str(error.value)


def test_model_training_flag_is_restored_and_parameters_get_no_gradient():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1), torch.nn.Flatten(0))
    model.train()
    run(config(steps=3), model)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_any_torch_optimizer_by_path():
    mei, _, _ = run(config(optimizer={"path": "torch.optim.Adam", "kwargs": {"lr": 0.05}}, steps=600))
    assert torch.allclose(mei, TARGET, atol=1e-3)
    mei, _, _ = run(config(optimizer={"path": "torch.optim.LBFGS", "kwargs": {"lr": 1.0}}, steps=3))
    assert torch.allclose(mei, TARGET, atol=1e-4)


def test_pre_step_input_is_copied_only_when_someone_may_read_it():
    from mei.objectives import EvaluationObjective, TransformedInputObjective
    from mei.optimization import MEI, optimize
    from mei.stoppers import NumIterations
    from mei.tracking import Tracker

    seen = []

    class Reader(NumIterations):  # a subclass that does not declare reads_input: assumed to read
        def __call__(self, state):
            seen.append(state.input_.clone())
            return super().__call__(state)

    def new():
        return MEI(QuadraticModel(), torch.zeros_like(TARGET), lambda p: torch.optim.SGD(p, lr=0.1))

    mei = new()
    optimize(mei, NumIterations(2), Tracker(e=EvaluationObjective(1)))
    assert mei.keep_input is False
    mei = new()
    optimize(mei, NumIterations(2), Tracker(t=TransformedInputObjective(1)))
    assert mei.keep_input is True
    mei = new()
    optimize(mei, Reader(3))
    assert mei.keep_input is True
    assert torch.equal(seen[0], torch.zeros_like(TARGET)) and not torch.equal(seen[1], seen[0])
    mei = new()
    mei.keep_input = False
    with pytest.raises(AttributeError, match="reads_input"):
        _ = mei.step().input_.shape
