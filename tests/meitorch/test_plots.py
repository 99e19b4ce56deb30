"""Plots write files that open as images; the analysis module's numbers are right."""

import matplotlib.image
import matplotlib.pyplot as plt
import pytest
import torch

from mei.meitorch.analyze import Analyze, similarity_matrix
from mei.meitorch.mei import MEI

from .helpers import SHAPE, squared_distance_operation, target


@pytest.fixture(scope="module")
def result():
    return MEI(squared_distance_operation(target()), shape=SHAPE).generate_pixel_mei(
        dict(iter_n=5, n_samples=3, optimizer="adam", optimizer_params=dict(lr=0.1)), seed=0)


def _opens_as_png(path):
    picture = matplotlib.image.imread(path)
    assert picture.ndim == 3 and picture.shape[0] > 100 and picture.shape[1] > 100
    assert picture.std() > 0  # not a blank canvas
    return picture


def test_each_plot_writes_a_png(result, tmp_path):
    result.plot_losses(show=False, save_path=tmp_path / "losses.png", ranges=None)
    result.plot_image_and_losses(save_path=tmp_path / "both.png", ranges={"objective": (0, 100)})
    result.plot_spatial_frequency_spectrum(save_path=tmp_path / "spectrum.png")
    Analyze(result).plot_similarity(save_path=tmp_path / "similarity.png")
    Analyze(result).plot_spectrum(save_path=tmp_path / "spectrum2.png")
    for name in ("losses", "both", "spectrum", "similarity", "spectrum2"):
        _opens_as_png(tmp_path / f"{name}.png")
    plt.close("all")


def test_ranges_set_the_y_limits(result):
    fig = result.plot_losses(ranges={"distance": (-1, 7)})
    limits = {ax.get_title(): ax.get_ylim() for ax in fig.axes}
    assert limits["distance"] == (-1, 7) and limits["objective"] != (-1, 7)
    fig = result.plot_losses(ranges=(0, 3))
    assert all(ax.get_ylim() == (0, 3) for ax in fig.axes)
    plt.close("all")


def test_similarity_between_meis():
    a = torch.randn(1, *SHAPE, generator=torch.Generator().manual_seed(0))
    images = torch.cat([a, 2 * a + 1, -a])
    corr = similarity_matrix(images, "correlation")
    assert torch.allclose(corr, torch.tensor([[1.0, 1, -1], [1, 1, -1], [-1, -1, 1]]), atol=1e-5)
    euclid = Analyze(a, a + 3).similarity("euclidean")
    assert euclid[0, 1].item() == pytest.approx(-3 * 8, rel=1e-4)  # 64 pixels, each 3 apart
    assert Analyze(torch.ones(2, *SHAPE)).high_frequency_fraction() == 0.0


def test_result_fields(result):
    assert result.mode == "pixel" and result.mei.shape == (3, *SHAPE) and result.mean.shape == (1, *SHAPE)
    assert result.images == [] and result.stddev is None and result.transform is None
    assert "final objective" in repr(result)
    with pytest.raises(ValueError, match="not a distribution"):
        result.sample(2)


def test_losses_keep_scalars_and_plain_numbers_and_skip_the_rest():
    def operation(inputs):
        loss = (inputs ** 2).mean()
        return dict(objective=loss, constant=2.5, per_image=inputs.flatten(1).sum(1), label="x")

    result = MEI(operation, shape=SHAPE).generate_pixel_mei(dict(iter_n=3, n_samples=2), seed=0)
    assert list(result.losses) == ["objective", "constant"] and result.losses["constant"] == [2.5] * 3
