"""sinzlab/mei's mei.legacy at its path: the ops named in lab configs, the legacy loop and its helpers."""

from __future__ import annotations

import pytest
import torch

from mei.engine import rng
from mei.engine.kernels import gaussian_kernel1d
from mei.legacy import ops
from mei.legacy.core import gradient_ascent
from mei.legacy.models import VGG19
from mei.legacy.utils import Combine, Compose, varargin


def test_norm_range_and_scale_ops():
    x = torch.arange(8.0).reshape(2, 1, 2, 2)
    norms = torch.linalg.vector_norm(ops.ChangeNorm(2.0)(x, 0).reshape(2, -1), dim=1)
    assert torch.allclose(norms, torch.full((2,), 2.0))
    assert torch.equal(ops.ClipRange(1.0, 5.0)(x, iteration=3), x.clamp(1, 5))
    assert torch.equal(ops.MultiplyBy(2.0, decay_factor=0.5)(x, 3), 3.0 * x)  # 2 + 0.5 * (3 - 1)
    assert torch.allclose(ops.ChangeStd(1.0)(x, 0).reshape(2, -1).std(1), torch.ones(2))
    assert torch.allclose(ops.DivideByMeanOfAbsolute()(x, 0)[1].abs().mean(), torch.tensor(1.0))
    assert torch.allclose(ops.ChangeRange(-1.0, 1.0)(torch.zeros(1, 1, 2, 2), 0), torch.zeros(1, 1, 2, 2))
    assert ops.Resize(0.5)(torch.ones(1, 1, 4, 6), 0).shape == (1, 1, 2, 3)
    assert ops.GrayscaleToRGB()(torch.ones(1, 1, 2, 2), 0).shape == (1, 3, 2, 2)


def test_gaussian_blur_is_sinzlabs_normalized_separable_kernel():
    delta = torch.zeros(1, 1, 9, 9)
    delta[..., 4, 4] = 1.0
    blurred = ops.GaussianBlur(1.0, truncate=2)(delta, 1)
    taps = gaussian_kernel1d(1.0, size=5)  # 2 * round(1.0 * 2) + 1 taps, as sinzlab's kernel
    assert torch.allclose(blurred[0, 0, 2:7, 2:7], taps[:, None] * taps[None, :], atol=1e-6)
    assert torch.allclose(ops.GaussianBlur([1.0, 2.0])(torch.ones(1, 2, 8, 8), 1), torch.ones(1, 2, 8, 8))
    grows = ops.GaussianBlur(0.5, decay_factor=0.5)
    assert grows(delta, 3).max() < grows(delta, 1).max()  # sigma 1.5 at iteration 3, 0.5 at iteration 1


def test_regularizers_give_known_values():
    checker = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    assert ops.TotalVariation(weight=2.0)(checker, 0).item() == 8.0  # 2 row + 2 column differences of 1
    assert ops.LpNorm(weight=1.0, p=2)(torch.ones(2, 1, 2, 2), 0).item() == pytest.approx(2.0)
    box = ops.BoxContrast(weight=1.0, filter_size=2, box_constraint=1.0, p=1, l1_weight=0.0)
    assert box(torch.ones(1, 1, 2, 2), 0).item() == pytest.approx(3.0)  # one box of energy 4, 3 above the bound
    assert box(0.4 * torch.ones(1, 1, 2, 2), 0).item() == 0.0
    assert ops.Transparency(0.5)(torch.ones(2, 2, 3, 3), 0).item() == 0.5
    twins = torch.stack([torch.arange(4.0), torch.arange(4.0)]).reshape(2, 1, 2, 2)
    assert ops.Similarity(metric="cosine")(twins, 0).item() == pytest.approx(1.0, abs=1e-6)
    assert ops.Similarity()(twins[:1], 0).item() == 0.0


def test_random_ops_draw_from_the_runs_seeded_streams():
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    with rng.seeded([5]):
        first = ops.Jitter(2)(x, 0), ops.RandomCrop(3, 4)(x, 0)
    with rng.seeded([5]):
        again = ops.Jitter(2)(x, 0), ops.RandomCrop(3, 4)(x, 0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert first[0].shape == x.shape and first[1].shape == (1, 1, 3, 4)
    crops = ops.BatchedCrops(4, 4, step_size=2)(x, 0)
    assert crops.shape == (4, 1, 4, 4) and torch.equal(crops[3], x[0, :, 2:, 2:])


def test_hyperparameters_are_checked_by_name():
    with pytest.raises(ValueError, match="norm must be >= 0"):
        ops.ChangeNorm(-1.0)
    with pytest.raises(ValueError, match="combine_op must be one of"):
        ops.Similarity(combine_op="median")


def test_legacy_gradient_ascent_runs_on_the_engine_loop(capsys):
    target = torch.tensor([[1.0, -2.0]])

    @varargin
    def halve_gradient(grad):
        return grad / 2

    x0 = torch.zeros(1, 2)
    opt_x, fevals, reg_terms = gradient_ascent(lambda x: -(x - target).pow(2).sum(), x0, gradient_f=halve_gradient,
                                               step_size=0.5, num_iterations=40, print_iters=20)
    assert torch.allclose(opt_x, target, atol=1e-4) and torch.equal(x0, torch.zeros(1, 2))
    assert len(fevals) == 41 and fevals[-1] == pytest.approx(0.0, abs=1e-6) and reg_terms == []
    assert "Iter 20:" in capsys.readouterr().out
    saved, _, _ = gradient_ascent(lambda x: x.sum(), x0, num_iterations=4, save_iters=2, print_iters=100)
    assert len(saved) == 2 and torch.allclose(saved[1], torch.full((1, 2), 0.4))
    with pytest.raises(ValueError, match="float32"):
        gradient_ascent(lambda x: x.sum(), x0.double())


def test_legacy_helpers_and_models():
    add = varargin(lambda x: x + 1)
    assert add(1, iteration=3) == 2
    assert Compose([add, add])(1, iteration=1) == 3 and Compose([])(1) is None
    assert Combine([lambda x: x, lambda x: 2 * x])(torch.tensor(1.0)).item() == 3.0
    assert VGG19(layer=1, channel=0, device="cpu")(torch.rand(1, 3, 8, 8)).dim() == 0  # one value


# ------------------------------------------------------------------ VGG-19 in pure torch, torchvision's layout

# torchvision's vgg19 / vgg19_bn ``features`` indices (configuration E): the convolutions and the max-pools
VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
VGG19_POOLS = [4, 9, 18, 27, 36]
VGG19_BN_CONVS = [0, 3, 7, 10, 14, 17, 20, 23, 27, 30, 33, 36, 40, 43, 46, 49]
VGG19_BN_POOLS = [6, 13, 26, 39, 52]
CLASSIFIER_KEYS = ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias",
                   "classifier.6.weight", "classifier.6.bias"]
WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


def expected_keys(use_batchnorm: bool) -> list[str]:
    keys = []
    for conv in VGG19_BN_CONVS if use_batchnorm else VGG19_CONVS:
        keys += [f"features.{conv}.weight", f"features.{conv}.bias"]
        if use_batchnorm:
            keys += [f"features.{conv + 1}.{name}"
                     for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    return keys + CLASSIFIER_KEYS


@pytest.mark.parametrize("use_batchnorm, n_params", [(False, 143_667_240), (True, 143_678_248)])
def test_vgg19_has_torchvisions_state_dict_keys_shapes_and_size(use_batchnorm, n_params):
    from mei.legacy.models import VGG19Network

    with torch.device("meta"):  # the layout only: no memory, no weights
        network = VGG19Network(use_batchnorm)
    state = network.state_dict()
    assert list(state) == expected_keys(use_batchnorm)
    convs = VGG19_BN_CONVS if use_batchnorm else VGG19_CONVS
    inputs = [3, *WIDTHS[:-1]]
    shapes = [(width, before, 3, 3) for width, before in zip(WIDTHS, inputs, strict=True)]
    assert [tuple(state[f"features.{c}.weight"].shape) for c in convs] == shapes
    assert tuple(state["classifier.0.weight"].shape) == (4096, 512 * 7 * 7)
    assert tuple(state["classifier.6.weight"].shape) == (1000, 4096)
    assert sum(p.numel() for p in network.parameters()) == n_params  # torchvision's documented sizes
    pools = VGG19_BN_POOLS if use_batchnorm else VGG19_POOLS
    assert [i for i, m in enumerate(network.features) if isinstance(m, torch.nn.MaxPool2d)] == pools
    assert len(network.features) == (53 if use_batchnorm else 37)


def test_vgg19_core_gives_the_feature_maps_of_its_layer_and_vgg19_one_channels_mean():
    from mei.legacy.models import VGG19, VGG19Core

    x = torch.rand(2, 3, 64, 64)
    assert VGG19Core(4, use_batchnorm=False, device="cpu")(x).shape == (2, 64, 32, 32)  # after the first pool
    assert VGG19Core(52, use_batchnorm=True, device="cpu")(x).shape == (2, 512, 2, 2)
    core = VGG19Core(1, use_batchnorm=False, device="cpu")  # conv + ReLU
    assert bool((core(x) >= 0).all())
    unit = VGG19(1, channel=5, use_batchnorm=False, device="cpu")
    unit.model = core
    assert unit(x).item() == pytest.approx(core(x)[:, 5].mean().item())
    with pytest.raises(ValueError, match="max is 36"):
        VGG19Core(37, use_batchnorm=False, device="cpu")


def test_pretrained_vgg19_says_how_to_load_weights_from_a_file():
    from mei.legacy.models import VGG19, VGG19Core

    for make in (lambda: VGG19Core(3, pretrained=True), lambda: VGG19(3, 0, pretrained=True)):
        with pytest.raises(ValueError, match=r"would download.*state_dict\(\), 'vgg19_bn.pth'.*weights="):
            make()


@pytest.mark.slow
def test_saved_vgg19_weights_load_unchanged(tmp_path):
    from mei.legacy.models import VGG19Core, VGG19Network

    network = VGG19Network(use_batchnorm=False)
    torch.save(network.state_dict(), tmp_path / "vgg19.pth")
    core = VGG19Core(34, use_batchnorm=False, device="cpu", weights=str(tmp_path / "vgg19.pth"))
    assert torch.equal(core.model[34].weight, network.features[34].weight)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(core(x), network.features[:35].eval()(x))
    del network.classifier[6]  # a state dict of another layout is refused, not half loaded
    torch.save(network.state_dict(), tmp_path / "other.pth")
    with pytest.raises(RuntimeError, match="classifier.6.weight"):
        VGG19Core(3, use_batchnorm=False, device="cpu", weights=str(tmp_path / "other.pth"))
