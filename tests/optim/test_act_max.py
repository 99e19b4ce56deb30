"""act_max raises the named unit; each Yosinski regularizer has exactly its stated effect; GIFs; converter."""

import numpy as np
import pytest
import torch
from torch import nn

from mei import act_max_util as amu
from mei.optim import postprocessing as P
from mei.preconditioners import blur2d

from ._models import Small


def _hooked(model, layer, name="layer"):
    acts = {}
    handle = layer.register_forward_hook(amu.layer_hook(acts, name))
    return acts, handle


def _img(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_act_max_raises_the_named_unit_and_leaves_input_alone():
    model = Small()
    acts, handle = _hooked(model, model.fc)
    start = _img(1, 3, 12, 12)
    start_copy = start.clone()
    out = amu.act_max(model, start, acts, "layer", unit=3, steps=30, alpha=1000.0)
    handle.remove()
    assert out.shape == start.shape and torch.equal(start, start_copy)
    assert model(out)[0, 3] > model(start)[0, 3] + 0.3  # -0.35 -> 0.15 on this random net


def test_act_max_on_a_conv_channel_averages_positions():
    model = Small()
    acts, handle = _hooked(model, model.features[3])
    start = _img(1, 3, 8, 8)
    out = amu.act_max(model, start, acts, "layer", unit=4, steps=20, alpha=torch.tensor(100))
    handle.remove()
    assert model.features(out)[0, 4].mean() > model.features(start)[0, 4].mean()


class _Bowl(nn.Module):
    """Unit 0 is -sum((x - 1)^2) per image: gradient ascent with step alpha maps x - 1 to (1 - 2 alpha)(x - 1)."""

    def __init__(self):
        super().__init__()
        self.out = nn.Identity()

    def forward(self, x):
        return self.out(-((x - 1) ** 2).flatten(1).sum(1, keepdim=True))


def test_act_max_returns_the_best_image_seen_as_the_utility_does():
    model = _Bowl()
    acts, _ = _hooked(model, model.out)
    start = _img(2, 1, 4, 4)
    # alpha 1.5 overshoots: x - 1 -> -2 (x - 1), the activation falls 4-fold every step, so the start is the best
    best = amu.act_max(model, start, acts, "layer", 0, steps=3, alpha=1.5)
    assert torch.equal(best, start)
    final = amu.act_max(model, start, acts, "layer", 0, steps=3, alpha=1.5, keep_best=False)
    assert torch.allclose(final - 1, (start - 1) * (-2) ** 3)
    # alpha 0.3 converges: x - 1 -> 0.4 (x - 1), every step is better, so the final image is the best
    out = amu.act_max(model, start, acts, "layer", 0, steps=3, alpha=0.3)
    assert torch.allclose(out - 1, (start - 1) * 0.4**3)


def test_act_max_keeps_the_best_step_of_each_image():
    # alpha 0.75 with L2 decay 0.5: each step maps x to 0.5 (x - 1.5 (x - 1)) = 0.75 - 0.25 x.
    # Image 0 starts next to the optimum (1.001) and only gets worse: its start is returned.
    # Image 1 goes 3 -> 0 -> 0.75 -> 0.5625: the activation -4 (x - 1)^2 is best after the second step.
    model = _Bowl()
    acts, _ = _hooked(model, model.out)
    start = torch.stack([torch.full((1, 2, 2), 1.001), torch.full((1, 2, 2), 3.0)])
    out = amu.act_max(model, start, acts, "layer", 0, steps=3, alpha=0.75, L2_Decay=True, theta_decay=0.5)
    assert torch.equal(out[0], start[0])
    assert torch.allclose(out[1], torch.full((1, 2, 2), 0.75))
    final = amu.act_max(model, start, acts, "layer", 0, steps=3, alpha=0.75, L2_Decay=True, theta_decay=0.5,
                        keep_best=False)
    assert torch.allclose(final[1], torch.full((1, 2, 2), 0.5625))


def test_l2_decay_shrinks_the_norm_exactly():
    model = Small()
    acts, _ = _hooked(model, model.fc)
    start = _img(1, 3, 8, 8)
    out = amu.act_max(model, start, acts, "layer", 0, steps=3, alpha=0.0, L2_Decay=True, theta_decay=0.1,
                      keep_best=False)
    assert torch.allclose(out, start * 0.9**3)


def test_blur_every_n_steps_lowers_high_frequencies():
    model = Small()
    acts, _ = _hooked(model, model.fc)
    start = _img(1, 3, 16, 16)
    kwargs = dict(alpha=0.0, Gaussian_Blur=True, theta_every=2, theta_width=1.0, keep_best=False)
    assert torch.equal(amu.act_max(model, start, acts, "layer", 0, steps=1, **kwargs), start)
    out = amu.act_max(model, start, acts, "layer", 0, steps=2, **kwargs)
    assert torch.allclose(out, blur2d(start, 1.0))
    high = lambda x: torch.fft.fft2(x).abs()[..., 6:11, 6:11].mean()  # noqa: E731
    assert high(out) < 0.2 * high(start)


def test_norm_crop_zeroes_exactly_the_weakest_pixels():
    start = torch.zeros(1, 3, 10, 10)
    start[0, 0] = torch.randperm(100, generator=torch.Generator().manual_seed(0)).view(10, 10).float() + 1
    model = Small()
    acts, _ = _hooked(model, model.fc)
    out = amu.act_max(model, start, acts, "layer", 0, steps=1, alpha=0.0, Norm_Crop=True, theta_n_crop=30,
                      keep_best=False)
    zeroed = out[0, 0] == 0
    assert zeroed.sum() == 30
    assert torch.equal(zeroed, start[0, 0] <= 30)
    assert torch.equal(out[0, 0][~zeroed], start[0, 0][~zeroed])


def test_contribution_crop_zeroes_pixels_with_least_contribution():
    # a 1x1 conv is linear: the gradient of its mean is w / (H * W) at every pixel, so a pixel's contribution
    # is |x . w| up to a constant, and the crop must zero the 40 % of pixels where |x . w| is smallest
    conv = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -2.0, 0.5]).view(1, 3, 1, 1))
    acts, _ = _hooked(conv, conv)
    start = _img(1, 3, 5, 5, seed=2)
    out = amu.act_max(conv, start, acts, "layer", 0, steps=1, alpha=1.0, Contrib_Crop=True, theta_c_crop=40,
                      keep_best=False)
    contribution = (start[0] * conv.weight.view(3, 1, 1)).sum(0).abs()
    expected_zero = contribution < torch.quantile(contribution.flatten(), 0.4)
    assert torch.equal((out[0] == 0).all(0), expected_zero)
    stepped = start + conv.weight.view(1, 3, 1, 1) / 25
    assert torch.allclose(out[0][:, ~expected_zero], stepped[0][:, ~expected_zero])


def test_contribution_crop_component_needs_the_previous_image():
    crop = P.ContributionCrop(50)
    before = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]]])
    after = torch.tensor([[[[2.0, 1.1], [1.5, 4.0]]]])
    assert torch.equal(crop(after, 0), after)  # step 0 without start(): nothing known, nothing cropped
    crop.start(before)
    assert torch.equal(crop(after, 0), torch.tensor([[[[2.0, 0.0], [0.0, 4.0]]]]))
    assert torch.equal(crop(after, 5), after)  # a step that does not follow the remembered one: left alone


def test_regularizer_values_are_checked():
    with pytest.raises(ValueError, match="theta_decay"):
        P.L2Decay(1.5)
    with pytest.raises(ValueError, match="percentile"):
        P.NormCrop(101)
    with pytest.raises(ValueError, match="every"):
        P.PeriodicBlur(every=0)
    assert repr(P.YosinskiRegularization(theta_decay=0.1)) == (
        "YosinskiRegularization(theta_decay=0.1, blur_every=None, blur_width=1.0, norm_percentile=None, "
        "contribution_percentile=None)")


def test_verbose_prints_and_gif_has_a_frame_per_step(tmp_path, capsys):
    from PIL import Image

    model = Small()
    acts, _ = _hooked(model, model.fc)
    path = tmp_path / "run.gif"
    amu.act_max(model, _img(1, 3, 12, 12), acts, "layer", 1, steps=4, alpha=50.0, verbose=True, gif=str(path))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("step 0: activation ")
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (12, 12)  # the start and one frame per step


def test_missing_hook_is_explained():
    with pytest.raises(KeyError, match="register layer_hook"):
        amu.act_max(Small(), _img(1, 3, 8, 8), {}, "nothing", 0, steps=1)


def test_image_converter_denormalizes_and_moves_channels_last():
    image = torch.zeros(3, 4, 5)
    out = amu.image_converter(image)
    assert isinstance(out, np.ndarray) and out.shape == (4, 5, 3)
    assert np.allclose(out[0, 0], amu.IMAGENET_MEAN)
    grey = amu.image_converter(torch.tensor([[[-1.0, 0.0, 1.0]]]))
    assert grey.shape == (1, 3, 1) and np.allclose(grey[0, :, 0], [0.0, 0.5, 1.0])
    assert amu.image_converter(torch.full((3, 2, 2), 9.0)).max() == 1.0
