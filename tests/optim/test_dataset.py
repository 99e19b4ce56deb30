"""Dataset colour correlation: image_cov of images with a known covariance, dataset averages over a DataLoader,
the KLT matrix (klt @ klt.T == cov), and a ToRGB / NaturalImage built from it reproducing that covariance."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mei.optim import dataset, images

MIXING = torch.tensor([[0.30, 0.10, 0.00], [0.25, -0.05, 0.04], [0.20, 0.00, -0.08]])
COV = MIXING @ MIXING.T


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _correlated_images(n=8, size=64, seed=0):
    """Images whose colours are ``MIXING`` applied to white noise, each with its own large mean colour."""
    g = _gen(seed)
    noise = torch.randn(n, 3, size, size, generator=g)
    offsets = 5.0 * torch.randn(n, 3, 1, 1, generator=g)
    return torch.einsum("ij,njhw->nihw", MIXING, noise) + offsets


def test_image_cov_is_each_images_channel_covariance():
    x = _correlated_images()
    cov = dataset.image_cov(x)
    assert cov.shape == (8, 3, 3)
    for n in range(8):
        assert torch.allclose(cov[n], torch.cov(x[n].flatten(1)), atol=1e-6)  # per-image mean removed
        assert torch.allclose(cov[n], COV, atol=0.01)
    assert torch.allclose(cov.mean(dim=0), COV, atol=4e-3)


def test_image_cov_takes_integers_and_any_positions_and_rejects_bad_input():
    pixels = torch.randint(0, 256, (2, 3, 4, 5), generator=_gen(1))
    assert torch.allclose(dataset.image_cov(pixels)[1], torch.cov(pixels[1].flatten(1).float()), atol=1e-3)
    video = torch.randn(2, 3, 4, 5, 6, generator=_gen(2))
    assert torch.allclose(dataset.image_cov(video)[0], torch.cov(video[0].flatten(1)), atol=1e-5)
    with pytest.raises(ValueError, match=r"images \(N, C, H, W\), got shape \(3, 4\)"):
        dataset.image_cov(torch.rand(3, 4))
    with pytest.raises(ValueError, match="at least 2 positions"):
        dataset.image_cov(torch.rand(2, 3, 1, 1))
    with pytest.raises(TypeError, match="got list"):
        dataset.image_cov([[1.0]])


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_dataset_cov_matrix_averages_over_all_images(batch_size):
    x = _correlated_images()
    expected = dataset.image_cov(x).mean(dim=0)
    with_labels = DataLoader(TensorDataset(x, torch.arange(8)), batch_size=batch_size)
    images_only = DataLoader(x, batch_size=batch_size)
    for loader in (with_labels, images_only):
        cov = dataset.dataset_cov_matrix(loader)
        assert cov.shape == (3, 3) and cov.dtype == torch.float32
        assert torch.allclose(cov, expected, atol=1e-6)
    assert torch.allclose(dataset.dataset_cov_matrix(with_labels, show_progress=True), expected, atol=1e-6)


def test_dataset_cov_matrix_errors():
    with pytest.raises(ValueError, match="yielded no images"):
        dataset.dataset_cov_matrix([])
    with pytest.raises(TypeError, match=r"images \(N, C, H, W\) or a tuple \(images, labels"):
        dataset.dataset_cov_matrix([{"image": torch.rand(1, 3, 4, 4)}])
    with pytest.raises(ValueError, match="disagree on the number of channels: 3 and 4"):
        dataset.dataset_cov_matrix([torch.rand(1, 3, 4, 4), torch.rand(1, 4, 4, 4)])


def test_klt_times_its_transpose_is_the_covariance():
    klt = dataset.cov_matrix_to_klt(COV)
    assert torch.allclose(klt @ klt.T, COV, atol=1e-6)
    gram = klt.T @ klt  # orthogonal columns, largest first
    eigenvalues = torch.linalg.eigvalsh(COV).flip(0)
    assert torch.allclose(gram, torch.diag(eigenvalues), atol=1e-6)
    for column in klt.T:
        assert column[column.abs().argmax()] > 0
    double = dataset.cov_matrix_to_klt(COV.double(), epsilon=0.0)
    assert double.dtype == torch.float64 and torch.allclose(double @ double.T, COV.double(), atol=1e-12)


def test_normalized_klt_keeps_the_correlation_and_scales_like_the_default():
    klt = dataset.cov_matrix_to_klt(COV)
    normalized = dataset.cov_matrix_to_klt(COV, normalize=True)
    assert torch.isclose(torch.linalg.vector_norm(normalized, dim=0).max(), torch.tensor(1.0))
    scale = torch.linalg.vector_norm(klt, dim=0).max()
    assert torch.allclose(normalized * scale, klt, atol=1e-6)


def test_klt_of_a_five_channel_covariance():
    mixing = torch.randn(5, 5, generator=_gen(3))
    cov = mixing @ mixing.T
    klt = dataset.cov_matrix_to_klt(cov)
    assert torch.allclose(klt @ klt.T, cov, atol=1e-4)


def test_cov_matrix_to_klt_errors():
    with pytest.raises(ValueError, match="square"):
        dataset.cov_matrix_to_klt(torch.rand(3, 2))
    with pytest.raises(ValueError, match="symmetric"):
        dataset.cov_matrix_to_klt(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="positive semi-definite.*-1"):
        dataset.cov_matrix_to_klt(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        dataset.cov_matrix_to_klt(COV, epsilon=-1.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        dataset.cov_matrix_to_klt(torch.full((2, 2), float("nan")))


def test_to_rgb_from_the_dataset_klt_gives_decorrelated_noise_the_dataset_covariance():
    loader = DataLoader(TensorDataset(_correlated_images(), torch.zeros(8)), batch_size=4)
    cov = dataset.dataset_cov_matrix(loader)
    klt = dataset.dataset_klt_matrix(loader)
    assert torch.allclose(klt, dataset.cov_matrix_to_klt(cov))
    to_rgb = images.ToRGB(transform=klt)
    noise = torch.randn(16, 3, 64, 64, generator=_gen(4))  # channel covariance I
    recoloured = dataset.image_cov(to_rgb(noise)).mean(dim=0)
    assert torch.allclose(recoloured, cov, atol=3e-3)
    assert torch.allclose(recoloured, COV, atol=6e-3)
    # and back: the inverse decorrelates the dataset's images
    decorrelated = dataset.image_cov(to_rgb(_correlated_images(seed=5), inverse=True)).mean(dim=0)
    assert torch.allclose(decorrelated, torch.eye(3), atol=0.05)


def test_natural_image_renders_with_the_dataset_klt():
    loader = DataLoader(_correlated_images(), batch_size=4)
    klt = dataset.dataset_klt_matrix(loader, normalize=True)
    start = torch.rand(1, 3, 16, 16, generator=_gen(6)) * 0.8 + 0.1
    image = images.NaturalImage((16, 16), init=start, parameterization=images.PixelImage,
                                decorrelation_module=images.ToRGB(klt))
    assert torch.equal(image.decorrelate.matrix, klt)
    assert torch.allclose(image(), start, atol=1e-4)  # the chain inverts the dataset's matrix
    pixels = image.parameterization.param.detach()
    expected = torch.einsum("ij,njhw->nihw", klt, pixels).clamp(0, 1)  # init given: captum's clamp
    assert torch.allclose(image(), expected, atol=1e-6)
