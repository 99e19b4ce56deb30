"""meitorch's result classes: each mode returns its class with meitorch's accessors, on a run whose optimum is
known (a linear unit's MEI under a norm constraint is its normalized weight)."""

import pytest
import torch

from mei.meitorch import MEI_image, MEI_transformation, MEI_variational, MEIResult
from mei.meitorch.mei import MEI
from mei.meitorch.result import MEI_result
from mei.meitorch.tools.transformations import GenerativeConvNet

from .helpers import SHAPE, linear_operation, target


def test_a_linear_units_pixel_mei_is_its_normalized_weight():
    w = target(5)
    result = MEI(linear_operation(w), shape=SHAPE).generate_pixel_mei(
        dict(iter_n=30, n_samples=2, norm=4.0, optimizer="sgd", optimizer_params=dict(lr=1.0), save_every=10), seed=0)
    assert type(result) is MEI_image and isinstance(result, MEIResult) and MEI_result is MEIResult
    expected = 4.0 * w / w.norm()
    assert torch.allclose(result.get_image(), expected.expand(2, *SHAPE), atol=1e-4)
    assert torch.equal(result.get_samples(), result.mei)
    assert result.get_activation() == pytest.approx(float((expected * w).sum()), rel=1e-5)
    assert result.result_dict["img_std"] == pytest.approx(float(result.mei.std()))
    assert result.loss_history is result.losses and result.image_history is result.images
    assert result.param_dict["iter_n"] == 30 and result.img_shape == SHAPE and result.n_samples == 2
    freqs, power = result.radial_spectrum()
    assert freqs.shape == power.shape and len(freqs) > 1
    freq_cols, freq_rows, magnitude = result.spatial_frequency()  # meitorch's: the first MEI's Fourier magnitude
    assert magnitude.shape == SHAPE and len(freq_cols) == SHAPE[2] and len(freq_rows) == SHAPE[1]
    assert float(magnitude[0, SHAPE[1] // 2, SHAPE[2] // 2]) == pytest.approx(abs(float(result.mei[0].sum())),
                                                                              rel=1e-5)  # the centre is the DC term
    assert repr(result).startswith("MEI_image(mode='pixel'")


def test_variational_and_transformation_results():
    w = target(5)
    mei = MEI(linear_operation(w), shape=SHAPE)
    variational = mei.generate_variational_mei(dict(iter_n=3, fixed_stddev=0.2, n_samples_per_batch=(2, 3),
                                                    optimizer="sgd"), seed=0)
    assert type(variational) is MEI_variational
    assert variational.get_image().shape == (1, *SHAPE) and variational.get_samples().shape == (6, *SHAPE)
    assert variational.n_samples == (2, 3)
    network = GenerativeConvNet(hidden_sizes=[2], fixed_stddev=0.1, kernel_size=3, shape=SHAPE)
    transformation = mei.generate_transformation_mei(dict(iter_n=2, n_samples=4, transform=network), seed=0)
    assert type(transformation) is MEI_transformation
    assert transformation.get_samples().shape == (4, *SHAPE)
    assert transformation.get_activation() == pytest.approx(float((transformation.mei * w).flatten(1).sum(1).mean()),
                                                            rel=1e-5)


def test_a_result_from_an_image():
    image = torch.ones(SHAPE)
    result = MEI_image.from_image(image, {"activation": 2.0})
    assert result.mei.shape == (1, *SHAPE) and result.get_activation() == 2.0 and result.losses == {}


def test_save_image_writes_the_meis_side_by_side(tmp_path):
    import matplotlib.image
    import matplotlib.pyplot as plt

    result = MEI_image.from_image(torch.stack([torch.ones(SHAPE), -torch.ones(SHAPE), torch.zeros(SHAPE)]))
    result.save_image(tmp_path / "meis.png")
    picture = matplotlib.image.imread(tmp_path / "meis.png")
    plt.close("all")
    assert picture.shape[1] > 2 * picture.shape[0]  # three images in a row


def test_an_mei_image_constructed_with_meitorchs_arguments_is_an_optimization_that_deepdraw_runs():
    from mei.engine.resolve import ConfigError
    from mei.meitorch.objective.deepdraw import deepdraw

    w = target(6)
    config = dict(iter_n=30, norm=4.0, optimizer="sgd", optimizer_params=dict(lr=1.0), save_every=10)
    process = MEI_image(SHAPE, n_samples=2, init=torch.zeros(SHAPE), seed=3, **config)
    assert not process.done and process.losses == {} and process.get_activation() is None
    assert torch.equal(process.image, torch.zeros(2, *SHAPE))  # the start: init for every sample
    assert process.param_dict["iter_n"] == 30 and process.param_dict["blur"] is None  # checked and complete
    summary = deepdraw(process, linear_operation(w))
    assert process.done and summary is process.result_dict and type(process) is MEI_image
    assert torch.allclose(process.mei, (4.0 * w / w.norm()).expand(2, *SHAPE), atol=1e-4)
    assert summary["activation"] == pytest.approx(float(4.0 * w.norm()), rel=1e-4)
    same = MEI(linear_operation(w), shape=SHAPE).generate_pixel_mei(
        dict(config, n_samples=2, init=torch.zeros(SHAPE)), seed=3)
    assert torch.equal(process.mei, same.mei) and process.losses == same.losses
    noise = MEI_image(SHAPE, n_samples=3, seed=8, iter_n=4, save_every=1, optimizer="sgd")
    start = noise.mei.clone()
    deepdraw(noise, linear_operation(w))
    again = MEI(linear_operation(w), shape=SHAPE).generate_pixel_mei(dict(n_samples=3, iter_n=4, save_every=1,
                                                                          optimizer="sgd"), seed=8)
    assert torch.equal(noise.mei, again.mei) and not torch.equal(start, noise.mei)
    with pytest.raises(ConfigError, match="blurr"):
        MEI_image(SHAPE, iter_n=2, blurr="gaussian")
    with pytest.raises(ValueError, match="finished result"):
        deepdraw(same, linear_operation(w))


def test_variational_and_transformation_processes():
    from mei.meitorch.objective.deepdraw import deepdraw

    w = target(5)
    process = MEI_variational("normal", SHAPE, iter_n=3, fixed_stddev=0.2, n_samples_per_batch=(2, 3),
                              optimizer="sgd", seed=0)
    assert not process.done and process.get_image().shape == (1, *SHAPE)
    deepdraw(process, linear_operation(w))
    same = MEI(linear_operation(w), shape=SHAPE).generate_variational_mei(
        dict(iter_n=3, fixed_stddev=0.2, n_samples_per_batch=(2, 3), optimizer="sgd"), seed=0)
    assert type(process) is MEI_variational and torch.equal(process.mei, same.mei)
    assert torch.allclose(process.stddev, torch.full((1, *SHAPE), 0.2))
    network = GenerativeConvNet(hidden_sizes=[2], fixed_stddev=0.1, kernel_size=3, shape=SHAPE)
    before = [p.detach().clone() for p in network.parameters()]
    trained = MEI_transformation(network, SHAPE, n_samples=4, iter_n=2, seed=0)
    deepdraw(trained, linear_operation(w))
    assert trained.done and trained.get_samples().shape == (4, *SHAPE) and trained.transform is not network
    assert all(torch.equal(a, b) for a, b in zip(before, network.parameters(), strict=True))


def test_meitorchs_loss_history_update_and_random_noise():
    result = MEI_image.from_image(torch.zeros(SHAPE), config={"bias": 0.5, "scale": 1.6})
    result.update_loss_history({"objective": torch.tensor([1.0, 3.0]), "activation": 2})
    result.update_loss_history({"objective": 0.5})
    assert result.loss_history == {"objective": [2.0, 0.5], "activation": [2.0]}
    noise = result.generate_random_noise((4000,), seed=0)
    assert float(noise.mean()) == pytest.approx(0.5, abs=0.01) and float(noise.std()) == pytest.approx(0.1, rel=0.05)
    assert torch.equal(noise, result.generate_random_noise((4000,), seed=0))
    assert float(MEI_image.from_image(torch.zeros(SHAPE), config={"bias": 0.98}).generate_random_noise(
        (100,), seed=1).max()) == 1.0  # clipped to [-1, 1]
