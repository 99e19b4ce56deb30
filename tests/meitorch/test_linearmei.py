"""LinearMEI: best_gabor recovers the parameters of a Gabor, optimal_gabor refines off-grid ones, the
white-noise receptive field of a linear unit is its weight; the Gabor generator draws what its parameters say."""

import pytest
import torch

from mei.meitorch.linearmei import LinearMEI
from mei.meitorch.mei import MEI
from mei.meitorch.objective.gabor import create_gabor, create_gabor_loader, gabors
from mei.meitorch.result import MEI_image
from mei.meitorch.tools.masks import fit_gauss_envelope

TRUE = dict(phase=90, wavelength=10, orientation=45, sigma=5, dy=0.125, dx=-0.25)
SMALL_GRID = dict(phase=[0, 90, 180, 270], wavelength=[5, 10, 20], orientation=[0, 45, 90, 135], sigma=[3, 5, 7],
                  dy=[0.0, 0.125], dx=[-0.25, 0.0])


def cosine_unit(template):
    """Cosine similarity of each image with ``template``: maximal (1) exactly at the template's shape."""

    def operation(x):
        flat = x.flatten(1)
        return flat @ template.flatten() / (flat.norm(dim=1) * template.norm() + 1e-12)

    return operation


def test_best_gabor_recovers_the_parameters_of_a_gabor_unit():
    unit = create_gabor(32, 32, **TRUE)
    linear = LinearMEI(cosine_unit(unit), shape=(1, 32, 32))
    linear.set_gabor_ranges(**SMALL_GRID)
    best = linear.best_gabor()
    assert isinstance(best, MEI_image)
    assert {k: best.result_dict[k] for k in TRUE} == pytest.approx(TRUE)
    assert best.get_activation() == pytest.approx(1.0, abs=1e-5)
    assert best.mei.shape == (1, 1, 32, 32) and torch.allclose(best.mei[0, 0], unit, atol=1e-6)


def test_best_gabor_of_a_loader_a_batch_reducing_dict_operation_and_bias_scale(tmp_path):
    unit = create_gabor(16, 16, phase=0, wavelength=8, orientation=90, sigma=3)
    loader = create_gabor_loader(dict(height=[16], width=[16], phase=[0, 180], wavelength=[4, 8],
                                      orientation=[0, 90], sigma=[3], dy=[0], dx=[0]), save_path=tmp_path / "g.pt")
    assert len(loader) == 8 and torch.equal(create_gabor_loader({}, load_path=tmp_path / "g.pt")[3]["image"],
                                            loader[3]["image"])
    unit_of = cosine_unit(unit)

    def operation(x):  # meitorch's MEI operation: one objective for the whole batch
        activation = unit_of(x).mean()
        return dict(objective=-activation, activation=activation)

    best = MEI(operation, shape=(1, 16, 16)).best_gabor(loader)
    assert best.result_dict["orientation"] == 90 and best.result_dict["wavelength"] == 8
    assert best.result_dict["phase"] == 0
    shifted = LinearMEI(unit_of, shape=(1, 16, 16), bias=0.5, scale=2.0).best_gabor(loader)
    assert torch.allclose(shifted.mei[0, 0], (shifted.result_dict["gabor"] - 0.5) / 2.0)


def test_best_gabor_refuses_colour_images():
    with pytest.raises(ValueError, match="Only grayscale"):
        LinearMEI(lambda x: x.sum(), shape=(3, 8, 8)).best_gabor()


@pytest.mark.slow
def test_optimal_gabor_refines_off_grid_parameters():
    true = dict(phase=60, wavelength=9, orientation=30, sigma=4, dy=0.05, dx=-0.1)
    unit = gabors(torch.tensor([[true[k] for k in ("phase", "wavelength", "orientation", "sigma", "dy", "dx")]]),
                  32, 32, quantize=False)[0]
    linear = LinearMEI(cosine_unit(unit), shape=(1, 32, 32))
    linear.set_gabor_ranges(**SMALL_GRID)
    coarse = linear.best_gabor()
    fine = linear.optimal_gabor(iter_n=150)
    assert fine.get_activation() > max(0.98, coarse.get_activation())
    assert fine.result_dict["orientation"] == pytest.approx(30, abs=3)
    assert fine.result_dict["wavelength"] == pytest.approx(9, rel=0.1)
    with pytest.raises(ValueError, match="specify both"):
        linear.optimal_gabor(target_mean=0.0)


@pytest.mark.slow
def test_optimal_gabor_with_a_target_mean_and_contrast_searches_among_gabors_of_those_statistics():
    true = dict(phase=60, wavelength=9, orientation=30, sigma=4, dy=0.05, dx=-0.1)
    unit = gabors(torch.tensor([[true[k] for k in ("phase", "wavelength", "orientation", "sigma", "dy", "dx")]]),
                  32, 32, quantize=False)[0]

    def pearson(x):  # blind to mean and contrast: the optimum is the unit's Gabor at any statistics
        flat = x.flatten(1) - x.flatten(1).mean(1, keepdim=True)
        template = unit.flatten() - unit.mean()
        return flat @ template / (flat.norm(dim=1) * template.norm() + 1e-12)

    linear = LinearMEI(pearson, shape=(1, 32, 32))
    linear.set_gabor_ranges(**SMALL_GRID)
    fine = linear.optimal_gabor(target_mean=0.1, target_contrast=0.2, iter_n=100)
    gabor = fine.result_dict["gabor"]
    assert float(gabor.max()) == pytest.approx(1.0) or float(gabor.min()) == pytest.approx(-1.0)  # it clips
    assert float(gabor.mean()) == pytest.approx(0.1, abs=1e-5)
    assert float(gabor.std(unbiased=False)) == pytest.approx(0.2, abs=1e-5)
    assert (fine.result_dict["target_mean"], fine.result_dict["target_contrast"]) == (0.1, 0.2)
    assert fine.get_activation() > 0.98  # the true Gabor at these statistics scores 0.997 (clipping costs a little)
    assert fine.result_dict["orientation"] == pytest.approx(30, abs=5)


def test_set_gabor_limits_and_ranges_check_names():
    linear = LinearMEI(lambda x: x.sum(), shape=(1, 8, 8))
    linear.set_gabor_limits(wavelength=(4, 12))
    assert linear.limits[1] == (4.0, 12.0)
    with pytest.raises(ValueError, match="Invalid key 'height'"):
        linear.set_gabor_limits(height=(1, 2))
    with pytest.raises(ValueError, match="unknown Gabor parameter"):
        linear.set_gabor_ranges(frequency=[1])


def test_white_noise_receptive_field_of_a_linear_unit_is_its_weight():
    w = torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(0))
    rf = LinearMEI.white_noise_analysis(lambda x: (x * w).flatten(1).sum(1), (1, 8, 8), n_samples=6000, sigma=0,
                                        seed=1)
    assert rf.shape == (64,)
    assert torch.corrcoef(torch.stack([rf, w.flatten()]))[0, 1] > 0.97
    assert (rf / 6000 ** 0.5).norm() == pytest.approx(w.norm().item(), rel=0.1)
    # two units at once, with smoothed noise: each field is that unit's weight seen through the smoothing
    two = LinearMEI.white_noise_analysis(lambda x: torch.stack([(x * w).flatten(1).sum(1), x.flatten(1)[:, 0]], 1),
                                         (1, 8, 8), n_samples=2000, sigma=0.6, seed=2)
    assert two.shape == (2, 64) and int(two[1].argmax()) == 0


def test_gabor_generator_draws_its_parameters():
    horizontal = create_gabor(32, 32, phase=90, wavelength=8, orientation=0, sigma=6)
    vertical = create_gabor(32, 32, phase=90, wavelength=8, orientation=90, sigma=6)
    assert torch.allclose(vertical, horizontal.T, atol=1e-6)
    row = create_gabor(32, 32, phase=90, wavelength=8, orientation=0, sigma=1e4)[:, 15]  # no envelope to speak of
    assert torch.allclose(row[8:], row[:-8], atol=1e-4) and torch.allclose(row[4:], -row[:-4], atol=1e-4)
    assert row.max() == pytest.approx(1.0, abs=1e-3)
    (mu_x, mu_y), _, _ = fit_gauss_envelope(create_gabor(32, 32, sigma=3, dy=0.25, dx=-0.125))
    assert (mu_x, mu_y) == pytest.approx((15.5 - 4, 15.5 + 8), abs=0.5)
    adjusted = create_gabor(32, 32, target_mean=0.2, target_contrast=0.1)
    assert float(adjusted.mean()) == pytest.approx(0.2, abs=1e-6)
    assert float(adjusted.std(unbiased=False)) == pytest.approx(0.1, abs=1e-6)
    with pytest.raises(ValueError, match="translations"):
        create_gabor(dx=1.5)
    with pytest.raises(ValueError, match="specify both"):
        create_gabor(target_mean=0.1)
