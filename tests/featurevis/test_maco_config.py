"""MACO (and the FFT chain) from a JSON method config: the engine's ``parameterization`` slot, so the final score
and the stored MEI are the rendered image, and the magnitude spectrum is the prescribed one at every step."""

import json
import math

import pytest
import torch

from mei.engine.errors import ConfigError
from mei.engine.resolve import build_component, validate_config
from mei.featurevis.maco import MACO, power_law_magnitude, prescribed_magnitude
from mei.methods import gradient_ascent
from tests.featurevis.models import GratingNet

PI = round(math.pi, 6)


class CentreUnit(torch.nn.Module):
    """Channel 1 of the grating net at the centre: one value per image."""

    def __init__(self) -> None:
        super().__init__()
        self.net = GratingNet(kernel=5)

    def forward(self, x):
        return self.net(x)[:, 1, x.shape[-2] // 2, x.shape[-1] // 2]


class ChannelMean(CentreUnit):
    """Channel 1 of the grating convolution before the ReLU, averaged over space (linear in the image)."""

    def forward(self, x):
        return self.net.conv(x - 0.5)[:, 1].mean(dim=(1, 2))


def maco_config(steps: int = 12, **maco: object) -> dict:
    text = json.dumps({
        "device": "cpu", "shape": [1, 3, 16, 20],
        "initial": {"path": "mei.initial.RandomUniform", "kwargs": {"low": -PI, "high": PI}},
        "parameterization": {"path": "mei.featurevis.maco.MACO", "kwargs": maco},
        "optimizer": {"path": "torch.optim.Adam", "kwargs": {"lr": 0.2}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
        "transform": {"path": "mei.transforms.Views", "kwargs": {"n_views": 3, "transforms": [
            {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 3}}]}},
        "objectives": [{"path": "mei.objectives.TransformedInputObjective", "kwargs": {"interval": 1}},
                       {"path": "mei.objectives.PostProcessedInputObjective", "kwargs": {"interval": 1}}],
    })
    return json.loads(text)  # exactly what a method table stores and hands back


def test_maco_from_a_json_config_keeps_the_magnitude_exactly_at_every_step_and_stores_the_rendered_image():
    config = maco_config(decorrelate=False, squash="none")
    validate_config(config)
    model = CentreUnit()
    mei, score, output = gradient_ascent(None, model, config, seed=3)
    prescribed = prescribed_magnitude(power_law_magnitude(16, 20, 3), 20).double()
    assert mei.shape == (1, 3, 16, 20)  # the image, not the phase (1, 3, 16, 11)
    torch.testing.assert_close(torch.fft.rfft2(mei.double(), norm="ortho").abs()[0], prescribed, atol=1e-5, rtol=1e-5)
    seen = output["mei.objectives.TransformedInputObjective"]["values"]
    phases = output["mei.objectives.PostProcessedInputObjective"]["values"]
    assert len(seen) == len(phases) == 12 and seen[0].shape == (3, 3, 16, 20) and phases[0].shape == (1, 3, 16, 11)
    for views in seen:  # every view the model saw, at every step: circular shifts keep the magnitude
        torch.testing.assert_close(torch.fft.rfft2(views.double(), norm="ortho").abs(),
                                   prescribed.expand(3, -1, -1, -1), atol=1e-5, rtol=1e-5)
    assert (phases[-1] - phases[0]).abs().max() > 0.1  # the phase moved
    with torch.no_grad():
        assert score == pytest.approx(float(model(mei)), abs=1e-6)  # the score is of the stored, rendered image


def test_maco_from_a_config_with_colour_and_sigmoid_scores_the_rendered_image_and_raises_the_unit():
    config = maco_config(steps=40)
    model = CentreUnit()
    mei, score, _ = gradient_ascent(None, model, config, seed=0)
    start, _, _ = gradient_ascent(None, model, maco_config(steps=1), seed=0)
    assert float(mei.min()) >= 0 and float(mei.max()) <= 1  # the sigmoid's range: an image
    with torch.no_grad():
        assert score == pytest.approx(float(model(mei)), abs=1e-6)
        assert score > float(model(start)) + 0.01


def test_a_parameterization_whose_render_differs_from_its_parameter_is_what_the_score_is_of():
    config = {
        "device": "cpu", "shape": [1, 3, 12, 12],
        "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.5}},
        "parameterization": {"path": "mei.optim.images.RenderImage",
                             "kwargs": {"parameterization": "fft", "decorrelate": "klt", "squash": "sigmoid"}},
        "optimizer": {"path": "torch.optim.Adam", "kwargs": {"lr": 0.05}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 5}},
        "objectives": [{"path": "mei.objectives.PostProcessedInputObjective", "kwargs": {"interval": 1}}],
    }
    model = ChannelMean()
    mei, score, output = gradient_ascent(None, model, config, seed=1)
    parameter = output["mei.objectives.PostProcessedInputObjective"]["values"][-1]  # after the last step
    render = build_component(config["parameterization"], "parameterization")
    with torch.no_grad():
        image = render(parameter)
        torch.testing.assert_close(mei, image)  # stored: the rendered image
        assert not torch.allclose(image, parameter, atol=0.05)  # which is not the parameter
        assert score == pytest.approx(float(model(image)), abs=1e-6)
        assert abs(score - float(model(parameter))) > 1e-3


def test_maco_refuses_what_it_cannot_render():
    with pytest.raises(ValueError, match=r"magnitude must be \(3, 16, 11\)"):
        MACO(magnitude=torch.ones(3, 16, 12).tolist()).parameter_shape((1, 3, 16, 20))
    with pytest.raises(ValueError, match="images \\(N, C, H, W\\)"):
        MACO().parameter_shape((1, 3, 16))
    with pytest.raises(RuntimeError, match="parameter_shape"):
        MACO()(torch.zeros(1, 3, 4, 3))
    bad = maco_config(squash="tanh")
    with pytest.raises(ConfigError, match="parameterization"):
        validate_config(bad)
    bad = maco_config()
    bad["parameterization"] = {"path": "mei.transforms.Jitter", "kwargs": {"max_shift": 1}}
    with pytest.raises(ConfigError, match="parameterization"):
        validate_config(bad)


def test_a_parameterization_with_sinzlab_transparency_is_refused_by_name():
    config = maco_config(steps=2)
    config["transparency"] = True
    with pytest.raises(ConfigError, match="parameterization.*transparency"):
        gradient_ascent(None, CentreUnit(), config, seed=0)
