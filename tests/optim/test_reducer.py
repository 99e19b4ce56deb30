"""ChannelReducer: PCA finds a known subspace in order, NMF rebuilds a known non-negative product, shapes,
posneg, the scikit-learn estimator interface, and clear errors."""

import numpy as np
import pytest
import torch

from mei.optim import reducer as rd
from mei.optim.reducer import NMF, PCA, ChannelReducer, posneg


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _as_activations(samples, n, height, width):
    """``(n * height * width, C)`` samples as an ``(n, C, height, width)`` activation tensor."""
    return samples.reshape(n, height, width, -1).permute(0, 3, 1, 2).contiguous()


def _two_direction_data(seed=0):
    """8-channel activations along two known orthonormal directions, with standard deviations 3 and 1."""
    g = _gen(seed)
    directions = torch.linalg.qr(torch.randn(8, 2, generator=g))[0].T  # (2, 8), orthonormal rows
    coefficients = torch.randn(4 * 10 * 10, 2, generator=g) * torch.tensor([3.0, 1.0])
    samples = coefficients @ directions + 0.01 * torch.randn(400, 8, generator=g) + 2.0
    return _as_activations(samples, 4, 10, 10), directions


def _low_rank_product(seed=1, n=2, height=16, width=16, channels=10, rank=3):
    g = _gen(seed)
    w = torch.rand(n * height * width, rank, generator=g)
    h = torch.rand(rank, channels, generator=g)
    return _as_activations(w @ h, n, height, width)


def _rebuild(components, maps):
    return torch.einsum("kc,nk...->nc...", components, maps)


def _relative_error(a, b):
    return float((a - b).norm() / b.norm())


def test_pca_recovers_the_subspace_and_its_order():
    x, directions = _two_direction_data()
    reducer = ChannelReducer(2, "PCA")
    maps = reducer.fit_transform(x)
    assert maps.shape == (4, 2, 10, 10)
    components = reducer.components
    assert components.shape == (2, 8)
    # the components span the two directions, the stronger one first
    projector = directions.T @ directions
    assert torch.allclose(components @ projector, components, atol=1e-2)
    cosines = (components @ directions.T).abs()
    assert cosines[0, 0] > 0.999 and cosines[1, 1] > 0.999
    ratio = reducer.estimator.explained_variance_ratio_
    assert ratio[0] > ratio[1] and torch.isclose(ratio[0], torch.tensor(0.9), atol=0.03)
    assert ratio.sum() > 0.999
    # the maps are the centred data's coordinates along the components
    centred = x - x.mean(dim=(0, 2, 3), keepdim=True)
    assert torch.allclose(maps, torch.einsum("kc,nchw->nkhw", components, centred), atol=1e-4)


def test_pca_signs_are_deterministic():
    x, _ = _two_direction_data()
    components = ChannelReducer(2, "PCA").fit(x).components
    for row in components:
        assert row[row.abs().argmax()] > 0
    assert torch.allclose(ChannelReducer(2, "PCA").fit(-x).components, components, atol=1e-5)


def test_pca_transform_of_new_data_matches_fit_transform():
    x, _ = _two_direction_data()
    reducer = ChannelReducer(2, "PCA")
    maps = reducer.fit_transform(x)
    assert torch.allclose(reducer.transform(x[:1]), maps[:1], atol=1e-5)


@pytest.mark.parametrize("init", ["nndsvda", "random"])
def test_nmf_rebuilds_a_known_non_negative_product(init):
    x = _low_rank_product()
    reducer = ChannelReducer(3, "NMF", init=init)
    maps = reducer.fit_transform(x)
    assert maps.shape == (2, 3, 16, 16)
    assert (maps >= 0).all() and (reducer.components >= 0).all()
    assert _relative_error(_rebuild(reducer.components, maps), x) < 1e-2
    assert reducer.estimator.reconstruction_err_ / float(x.norm()) < 1e-2


def test_nmf_is_deterministic_and_transforms_new_data():
    x = _low_rank_product()
    first, second = ChannelReducer(3), ChannelReducer(3)
    assert torch.equal(first.fit_transform(x), second.fit_transform(x))
    assert torch.equal(first.components, second.components)
    new = first.transform(x[:1])
    assert (new >= 0).all()
    assert _relative_error(_rebuild(first.components, new), x[:1]) < 1e-2


def test_nmf_takes_signed_activations_through_posneg():
    """Positions of either sign along 2 non-negative channel patterns: posneg makes it an exact rank-4 product."""
    g = _gen(2)
    signs = torch.randint(0, 2, (2 * 12 * 12, 1), generator=g) * 2.0 - 1.0
    patterns = torch.rand(2, 8, generator=g)
    signed = _as_activations(signs * (torch.rand(288, 2, generator=g) @ patterns), 2, 12, 12)
    with pytest.raises(ValueError, match=r"non-negative.*posneg"):
        ChannelReducer(2, "NMF").fit(signed)
    doubled = posneg(signed, dim=1)
    assert doubled.shape == (2, 16, 12, 12)
    reducer = ChannelReducer(4, "NMF")
    maps = reducer.fit_transform(doubled)
    assert (maps >= 0).all() and (reducer.components >= 0).all()
    assert _relative_error(_rebuild(reducer.components, maps), doubled) < 1e-2
    rebuilt = _rebuild(reducer.components, maps)
    assert _relative_error(rebuilt[:, :8] - rebuilt[:, 8:], signed) < 1e-2


def test_posneg_exact_values():
    x = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    assert torch.equal(posneg(x), torch.tensor([[1.0, 0.0], [0.0, 3.0], [0.0, 2.0], [0.0, 0.0]]))
    assert torch.equal(posneg(x, dim=1), torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 3.0, 0.0, 0.0]]))
    y = torch.randn(2, 3, 4, 4, generator=_gen(0))
    parts = posneg(y, dim=1)
    assert (parts >= 0).all() and torch.equal(parts[:, :3] - parts[:, 3:], y)


@pytest.mark.parametrize("algorithm", ["NMF", "PCA"])
def test_shapes_with_and_without_swapping(algorithm):
    x = _low_rank_product(n=2, height=5, width=7, channels=6)
    reducer = ChannelReducer(3, algorithm)
    assert reducer.fit_transform(x).shape == (2, 3, 5, 7)
    channels_last = x.permute(0, 2, 3, 1)
    reduced = reducer.fit_transform(channels_last, swap_2nd_and_last_dims=False)
    assert reduced.shape == (2, 5, 7, 3)
    assert reducer.transform(channels_last, swap_2nd_and_last_dims=False).shape == (2, 5, 7, 3)
    assert reducer.fit_transform(channels_last.reshape(-1, 6), swap_2nd_and_last_dims=False).shape == (70, 3)
    video = x.unsqueeze(2).expand(-1, -1, 4, -1, -1)  # (N, C, T, H, W)
    assert reducer.fit_transform(video).shape == (2, 3, 4, 5, 7)
    assert reducer.fit_transform(x.double()).dtype == torch.float64


def test_swapping_reads_channels_from_the_second_dimension():
    """The same samples give the same result whichever dimension holds the channels."""
    x, _ = _two_direction_data()
    reducer = ChannelReducer(2, "PCA")
    swapped = reducer.fit_transform(x)
    last = reducer.fit_transform(x.permute(0, 2, 3, 1), swap_2nd_and_last_dims=False)
    assert torch.allclose(last.permute(0, 3, 1, 2), swapped, atol=1e-5)


class FakeEstimator:
    """A test double of scikit-learn's estimator interface: PCA without centring, in NumPy."""

    instances: list = []

    def __init__(self, n_components=2, scale=1.0):
        self.n_components, self.scale = n_components, scale
        self.seen = []
        FakeEstimator.instances.append(self)

    def fit_transform(self, x):
        self.seen.append(x)
        self.components_ = np.linalg.svd(x, full_matrices=False)[2][:self.n_components]
        return self.transform(x)

    def transform(self, x):
        return self.scale * x @ self.components_.T


def test_estimator_class_is_built_with_n_components_and_kwargs():
    x, directions = _two_direction_data()
    reducer = ChannelReducer(2, FakeEstimator, scale=2.0)
    estimator = FakeEstimator.instances[-1]
    assert reducer.estimator is estimator and estimator.n_components == 2 and estimator.scale == 2.0
    maps = reducer.fit_transform(x)
    assert isinstance(estimator.seen[0], np.ndarray) and estimator.seen[0].shape == (400, 8)
    assert isinstance(maps, torch.Tensor) and maps.shape == (4, 2, 10, 10) and maps.dtype == torch.float32
    assert isinstance(reducer.components, torch.Tensor) and reducer.components.shape == (2, 8)
    expected = 2.0 * torch.einsum("kc,nchw->nkhw", reducer.components.float(), x)
    assert torch.allclose(maps, expected, atol=1e-4)
    assert reducer.transform(x[:1]).shape == (1, 2, 10, 10)


def test_estimator_object_is_used_as_it_is():
    estimator = FakeEstimator(n_components=1)
    reducer = ChannelReducer(reduction_alg=estimator)
    assert reducer.estimator is estimator
    x, _ = _two_direction_data()
    assert reducer.fit_transform(x).shape == (4, 1, 10, 10)
    with pytest.raises(ValueError, match="set them on the given FakeEstimator instance"):
        ChannelReducer(reduction_alg=FakeEstimator(), scale=3.0)


class EmbeddingOnly:
    """Like t-SNE: fit_transform only, no components_ and no transform."""

    def __init__(self, n_components=2):
        self.n_components = n_components

    def fit_transform(self, x):
        return x[:, :self.n_components]


def test_embedding_estimators_say_what_they_lack():
    x, _ = _two_direction_data()
    reducer = ChannelReducer(2, EmbeddingOnly)
    assert torch.equal(reducer.fit_transform(x), x[:, :2])
    with pytest.raises(AttributeError, match="EmbeddingOnly has no components_"):
        _ = reducer.components
    with pytest.raises(AttributeError, match="EmbeddingOnly cannot transform new data"):
        reducer.transform(x)


@pytest.mark.parametrize("n_components", [0, -1, 2.5, True, "3", None])
def test_bad_n_components(n_components):
    with pytest.raises(ValueError, match="n_components must be a positive int"):
        ChannelReducer(n_components)


def test_errors_name_the_problem():
    x = _low_rank_product(channels=4)
    with pytest.raises(ValueError, match=r"n_components=5 cannot reduce 4 channels"):
        ChannelReducer(5, "PCA").fit(x)
    with pytest.raises(ValueError, match=r"reduction_alg must be one of \['NMF', 'PCA'\].*got 'TSNE'"):
        ChannelReducer(2, "TSNE")
    with pytest.raises(TypeError, match="fit_transform"):
        ChannelReducer(2, object())
    with pytest.raises(RuntimeError, match="not fitted yet"):
        ChannelReducer(2).transform(x)
    with pytest.raises(RuntimeError, match="not fitted yet"):
        _ = ChannelReducer(2).components
    with pytest.raises(ValueError, match="fitted on 4 channels, got 3"):
        ChannelReducer(2).fit(x).transform(x[:, :3])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ChannelReducer(2).fit(torch.rand(10))
    with pytest.raises(ValueError, match="NaN or infinite"):
        ChannelReducer(2).fit(torch.full((1, 4, 3, 3), float("nan")))
    with pytest.raises(ValueError, match="init must be"):
        ChannelReducer(2, "NMF", init="svd")
    with pytest.raises(TypeError, match="unexpected keyword"):
        ChannelReducer(2, "PCA", max_iter=10)


def test_names_are_case_insensitive_and_repr_is_readable():
    assert isinstance(ChannelReducer(2, "pca").estimator, PCA)
    assert isinstance(ChannelReducer(2, "nmf").estimator, NMF)
    assert repr(ChannelReducer(2, "PCA")) == "ChannelReducer(n_components=2, reduction_alg=PCA(n_components=2))"
    assert set(rd.ALGORITHMS) == {"NMF", "PCA"}


def test_nmf_keeps_the_error_falling():
    x = torch.rand(200, 12, generator=_gen(4))
    errors = [NMF(4, max_iter=n, tol=0).fit(x).reconstruction_err_ for n in (1, 5, 20, 60)]
    assert errors == sorted(errors, reverse=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("algorithm", ["NMF", "PCA"])
def test_reduction_stays_on_the_gpu(algorithm):
    x = _low_rank_product()
    reducer = ChannelReducer(3, algorithm)
    maps = reducer.fit_transform(x.cuda())
    assert maps.is_cuda and reducer.components.is_cuda
    if algorithm == "PCA":
        assert _relative_error(maps.cpu(), ChannelReducer(3, algorithm).fit_transform(x)) < 1e-3
    else:
        assert _relative_error(_rebuild(reducer.components, maps).cpu(), x) < 1e-2
