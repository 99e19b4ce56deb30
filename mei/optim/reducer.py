"""Dimensionality reduction of activations over their channel dimension, captum.optim-style.

:class:`ChannelReducer` reads an activation tensor as ``(positions, channels)`` samples, reduces the channels
with an estimator and puts the result back in shape: ``(N, C, H, W)`` becomes ``(N, n_components, H, W)``,
and :attr:`ChannelReducer.components` holds the ``(n_components, C)`` channel directions. Two estimators are
built in, in pure torch (on the tensor's device, deterministic): :class:`NMF` (non-negative matrix
factorization by multiplicative updates) and :class:`PCA` (SVD of the centred data). Any estimator object or
class with scikit-learn's interface (``fit_transform``, and ``components_`` after fitting) works too;
scikit-learn itself is not a dependency of ``mei``.

Example:
    >>> reducer = ChannelReducer(n_components=3, reduction_alg="NMF")
    >>> maps = reducer.fit_transform(relu_activations)   # (N, 3, H, W)
    >>> reducer.components.shape                          # (3, C)
"""

from __future__ import annotations

import operator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor


@runtime_checkable
class Estimator(Protocol):
    """scikit-learn's estimator interface as :class:`ChannelReducer` uses it.

    ``fit_transform(x)`` maps samples ``(n_samples, n_features)`` to ``(n_samples, n_components)``. After
    fitting, ``components_`` ``(n_components, n_features)`` gives the channel directions and ``transform(x)``
    reduces new samples; both are optional (t-SNE and UMAP have neither).
    """

    def fit_transform(self, x: Any) -> Any:
        """Fit to samples ``(n_samples, n_features)`` and return them reduced, ``(n_samples, n_components)``."""
        ...


def posneg(x: Tensor, dim: int = 0) -> Tensor:
    """Split ``x`` into its positive and its negative part and concatenate them along ``dim``.

    The result, ``cat([relu(x), relu(-x)], dim)``, is non-negative, so signed activations can go into NMF;
    ``x`` is the first half minus the second.

    Args:
        x (Tensor): any tensor.
        dim (int, optional): the dimension to concatenate along (``1`` for the channels of ``(N, C, H, W)``
            activations, which then doubles ``C``). Default: 0.

    Returns:
        Tensor: ``x``'s shape with ``dim`` twice as long.
    """
    return torch.cat([x.clamp_min(0), (-x).clamp_min(0)], dim=dim)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive int, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return number


def _samples(x: Any) -> Tensor:
    """``x`` as a finite floating ``(n_samples, n_features)`` tensor."""
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"expected samples (n_samples, n_features), got shape {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError("the input holds NaN or infinite values")
    return x


def _check_rank(n_components: int, x: Tensor, what: str) -> None:
    if n_components > min(x.shape):
        raise ValueError(f"{what} with n_components={n_components} needs at least {n_components} samples and "
                         f"features, got {tuple(x.shape)}")


class NMF:
    """Non-negative matrix factorization ``X ≈ W H`` (``W, H >= 0``) by Lee and Seung's multiplicative updates.

    ``X`` is ``(n_samples, n_features)``; ``W`` ``(n_samples, n_components)`` is what :meth:`fit_transform`
    returns and ``H`` ``(n_components, n_features)`` is ``components_``. Each update lowers (or keeps) the
    squared Frobenius error ``||X - W H||^2``. An iteration updates ``W`` ``inner_updates`` times, reusing the
    costly product ``X H^T``, then ``H`` as often, reusing ``W^T X`` (Gillis and Glineur's accelerated
    multiplicative updates): with many features, an iteration costs little more than one plain update and
    converges much faster.

    Args:
        n_components (int, optional): rank of the factorization. Default: 3.
        max_iter (int, optional): most iterations. Default: 200.
        tol (float, optional): stop once the relative error ``||X - W H|| / ||X||`` falls by less than ``tol``
            over 5 iterations. Default: 1e-5.
        inner_updates (int, optional): updates of each factor per iteration. Default: 10.
        init (str, optional): ``"nndsvda"`` (Boutsidis and Gallopoulos' non-negative double SVD, zeros
            filled with the mean of ``X``; deterministic) or ``"random"`` (uniform, drawn from ``seed``).
            Default: ``"nndsvda"``.
        seed (int, optional): seed of the ``"random"`` init. Default: 0.

    After fitting: ``components_``, ``reconstruction_err_`` (``||X - W H||``) and ``n_iter_``.
    """

    def __init__(self, n_components: int = 3, max_iter: int = 200, tol: float = 1e-5, inner_updates: int = 10,
                 init: str = "nndsvda", seed: int = 0) -> None:
        self.n_components = _positive_int(n_components, "n_components")
        self.max_iter = _positive_int(max_iter, "max_iter")
        self.inner_updates = _positive_int(inner_updates, "inner_updates")
        if not tol >= 0:
            raise ValueError(f"tol must be >= 0, got {tol!r}")
        if init not in ("nndsvda", "random"):
            raise ValueError(f"init must be 'nndsvda' or 'random', got {init!r}")
        self.tol, self.init, self.seed = float(tol), init, int(seed)

    def __repr__(self) -> str:
        return f"NMF(n_components={self.n_components}, max_iter={self.max_iter}, tol={self.tol}, init={self.init!r})"

    @staticmethod
    def _non_negative(x: Any) -> Tensor:
        x = _samples(x)
        smallest = float(x.min()) if x.numel() else 0.0
        if smallest < 0:
            raise ValueError(f"NMF needs non-negative input, but its smallest value is {smallest:.4g}: pass "
                             "activations after a ReLU, split the signs with mei.optim.reducer.posneg(x, dim=1) "
                             "(which doubles the channels), or use reduction_alg='PCA'")
        return x

    def _start(self, x: Tensor) -> tuple[Tensor, Tensor]:
        k, mean = self.n_components, x.mean()
        if self.init == "random":
            generator = torch.Generator().manual_seed(self.seed)
            scale = float(torch.sqrt(mean / k))
            w = scale * torch.rand(x.shape[0], k, generator=generator, dtype=x.dtype)
            h = scale * torch.rand(k, x.shape[1], generator=generator, dtype=x.dtype)
            return w.to(x.device), h.to(x.device)
        _check_rank(k, x, "NMF(init='nndsvda')")
        u, s, vt = torch.linalg.svd(x, full_matrices=False)
        u, s, vt = u[:, :k], s[:k], vt[:k]
        halves = [(u.clamp_min(0), vt.clamp_min(0)), ((-u).clamp_min(0), (-vt).clamp_min(0))]
        norms = [(torch.linalg.vector_norm(a, dim=0), torch.linalg.vector_norm(b, dim=1)) for a, b in halves]
        positive = norms[0][0] * norms[0][1] >= norms[1][0] * norms[1][1]  # the dominant sign of each pair
        a = torch.where(positive, halves[0][0], halves[1][0])
        b = torch.where(positive[:, None], halves[0][1], halves[1][1])
        norm_a = torch.where(positive, norms[0][0], norms[1][0])
        norm_b = torch.where(positive, norms[0][1], norms[1][1])
        tiny = torch.finfo(x.dtype).tiny
        scales = torch.sqrt(s * norm_a * norm_b)
        w = a / norm_a.clamp_min(tiny) * scales
        h = b / norm_b.clamp_min(tiny)[:, None] * scales[:, None]
        return w.masked_fill(w == 0, mean), h.masked_fill(h == 0, mean)

    def _updates(self, factor: Tensor, numerator: Tensor, gram: Tensor, left: bool) -> Tensor:
        """``inner_updates`` multiplicative updates of one factor, the other held fixed (each lowers the error)."""
        tiny = torch.finfo(factor.dtype).tiny
        for _ in range(self.inner_updates):
            denominator = gram @ factor if left else factor @ gram
            factor = factor * numerator / denominator.clamp_min(tiny)
        # entries far below the largest one are zeros in the making; flushing them keeps denormals out
        return factor.masked_fill(factor < torch.finfo(factor.dtype).eps ** 2 * factor.max(), 0.0)

    def _update(self, x: Tensor, w: Tensor, h: Tensor, update_h: bool = True) -> tuple[Tensor, Tensor, int]:
        """Iterations of ``W`` updates (reusing ``X H^T``) and, with ``update_h``, ``H`` updates (reusing
        ``W^T X``), until the relative error falls by less than ``tol`` over 5 iterations or ``max_iter``."""
        norm_x = max(float(torch.linalg.vector_norm(x)), torch.finfo(x.dtype).tiny)
        previous, n_iter = float("inf"), 0
        for n_iter in range(1, self.max_iter + 1):
            w = self._updates(w, x @ h.T, h @ h.T, left=False)
            if update_h:
                h = self._updates(h, w.T @ x, w.T @ w, left=True)
            if n_iter % 5 == 0:
                error = float(torch.linalg.vector_norm(x - w @ h)) / norm_x
                if previous - error < self.tol:
                    break
                previous = error
        return w, h, n_iter

    def fit_transform(self, x: Tensor) -> Tensor:
        """Factorize ``x`` and return ``W``.

        Args:
            x (Tensor): non-negative samples ``(n_samples, n_features)``.

        Returns:
            Tensor: ``W``, ``(n_samples, n_components)``, non-negative.
        """
        x = self._non_negative(x)
        w, h = self._start(x)
        w, h, self.n_iter_ = self._update(x, w, h)
        self.components_ = h
        self.reconstruction_err_ = float(torch.linalg.vector_norm(x - w @ h))
        return w

    def fit(self, x: Tensor) -> NMF:
        """Factorize ``x`` (see :meth:`fit_transform`) and return the estimator."""
        self.fit_transform(x)
        return self

    def transform(self, x: Tensor) -> Tensor:
        """``W`` for new samples with the fitted ``H`` held fixed (multiplicative updates of ``W`` only).

        Args:
            x (Tensor): non-negative samples ``(n_samples, n_features)``.

        Returns:
            Tensor: ``(n_samples, n_components)``, non-negative.
        """
        if not hasattr(self, "components_"):
            raise RuntimeError("NMF is not fitted yet: call fit or fit_transform first")
        x = self._non_negative(x)
        h = self.components_.to(x.device, x.dtype)
        start = (x @ torch.linalg.pinv(h)).clamp_min(0)
        start = start.masked_fill(start == 0, float(x.mean()) / self.n_components)
        return self._update(x, start, h, update_h=False)[0]


class PCA:
    """Principal component analysis by the SVD of the centred samples, in torch.

    Each component's sign is fixed so that its entry of largest magnitude is positive, so the result does not
    depend on the SVD routine's signs (and ``-X`` gives the same components as ``X``).

    Args:
        n_components (int, optional): number of components kept. Default: 3.

    After fitting: ``components_`` ``(n_components, n_features)`` in order of explained variance,
    ``explained_variance_``, ``explained_variance_ratio_``, ``singular_values_`` and ``mean_``.
    """

    def __init__(self, n_components: int = 3) -> None:
        self.n_components = _positive_int(n_components, "n_components")

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components})"

    def fit(self, x: Tensor) -> PCA:
        """Find the principal components of ``x``.

        Args:
            x (Tensor): samples ``(n_samples, n_features)``.

        Returns:
            PCA: the fitted estimator.
        """
        x = _samples(x)
        _check_rank(self.n_components, x, "PCA")
        self.mean_ = x.mean(dim=0)
        _, s, vt = torch.linalg.svd(x - self.mean_, full_matrices=False)
        components = vt[:self.n_components]
        largest = components.abs().argmax(dim=1, keepdim=True)
        self.components_ = components * components.gather(1, largest).sign()
        variance = s.pow(2) / max(x.shape[0] - 1, 1)
        self.singular_values_ = s[:self.n_components]
        self.explained_variance_ = variance[:self.n_components]
        total = variance.sum().clamp_min(torch.finfo(x.dtype).tiny)
        self.explained_variance_ratio_ = self.explained_variance_ / total
        return self

    def transform(self, x: Tensor) -> Tensor:
        """Coordinates of samples along the components.

        Args:
            x (Tensor): samples ``(n_samples, n_features)``.

        Returns:
            Tensor: ``(x - mean_) @ components_.T``, ``(n_samples, n_components)``.
        """
        if not hasattr(self, "components_"):
            raise RuntimeError("PCA is not fitted yet: call fit or fit_transform first")
        x = _samples(x)
        return (x - self.mean_.to(x.device, x.dtype)) @ self.components_.to(x.device, x.dtype).T

    def fit_transform(self, x: Tensor) -> Tensor:
        """:meth:`fit` on ``x``, then :meth:`transform` it."""
        return self.fit(x).transform(x)


#: The built-in estimators, by the name ``reduction_alg`` takes (case-insensitive).
ALGORITHMS: dict[str, type] = {"NMF": NMF, "PCA": PCA}


def _estimator(reduction_alg: str | type | Estimator, n_components: int, kwargs: dict) -> tuple[Any, bool]:
    """The estimator and whether ``ChannelReducer`` built it (with ``n_components`` and ``kwargs``)."""
    if isinstance(reduction_alg, str):
        if reduction_alg.upper() not in ALGORITHMS:
            raise ValueError(f"reduction_alg must be one of {sorted(ALGORITHMS)} or an estimator object or class "
                             f"with fit_transform (e.g. sklearn.manifold.TSNE), got {reduction_alg!r}")
        reduction_alg = ALGORITHMS[reduction_alg.upper()]
    if not callable(getattr(reduction_alg, "fit_transform", None)):
        raise TypeError(f"reduction_alg must be 'NMF', 'PCA' or have a fit_transform method, got {reduction_alg!r}")
    if isinstance(reduction_alg, type):
        return reduction_alg(n_components=n_components, **kwargs), True
    if kwargs:
        raise ValueError(f"keyword arguments build the estimator from a class; set them on the given "
                         f"{type(reduction_alg).__name__} instance instead: got {sorted(kwargs)}")
    return reduction_alg, False


class ChannelReducer:
    """Reduce activations over their channel dimension with NMF, PCA or any scikit-learn-style estimator.

    Every position (and image) is a sample and every channel a feature: an ``(N, C, H, W)`` tensor is read as
    ``N * H * W`` samples of ``C`` features, reduced to ``n_components`` and put back as
    ``(N, n_components, H, W)``. Any number of positional dimensions works (``(N, C, T, H, W)``, ``(N, C)``).
    The results carry no gradient.

    Args:
        n_components (int, optional): the number of channels to reduce to. Default: 3.
        reduction_alg (str, class or object, optional): ``"NMF"`` (:class:`NMF`, needs non-negative
            activations: after a ReLU, or split by :func:`posneg`), ``"PCA"`` (:class:`PCA`), an estimator class
            with scikit-learn's interface (built as ``reduction_alg(n_components=n_components, **kwargs)``,
            e.g. ``sklearn.decomposition.FastICA``) or such an estimator object (used as it is). Estimators other
            than the built-in ones get and return NumPy arrays on the CPU. t-SNE and UMAP work only this way,
            passing e.g. ``sklearn.manifold.TSNE`` or ``umap.UMAP`` (neither is a dependency of ``mei``); they
            have no ``components_`` and cannot :meth:`transform` new data. Default: ``"NMF"``.
        **kwargs: further arguments of the estimator class, e.g. ``max_iter`` or ``init`` for :class:`NMF`.

    ``estimator`` is the underlying estimator, for its fitted attributes (``explained_variance_ratio_`` …).
    """

    def __init__(self, n_components: int = 3, reduction_alg: str | type | Estimator = "NMF", **kwargs: Any) -> None:
        self.n_components = _positive_int(n_components, "n_components")
        self.estimator, self._built = _estimator(reduction_alg, self.n_components, kwargs)
        self._channels: int | None = None

    def __repr__(self) -> str:
        return f"ChannelReducer(n_components={self.n_components}, reduction_alg={self.estimator!r})"

    def _samples(self, tensor: Tensor, swap_2nd_and_last_dims: bool) -> tuple[Tensor, torch.Size]:
        if not isinstance(tensor, Tensor):
            raise TypeError(f"expected a tensor, got {type(tensor).__name__}")
        if tensor.dim() < 2:
            raise ValueError(f"expected activations (N, C, ...) with at least 2 dimensions, got shape "
                             f"{tuple(tensor.shape)}")
        channels_last = tensor.detach().movedim(1, -1) if swap_2nd_and_last_dims else tensor.detach()
        return channels_last.reshape(-1, channels_last.shape[-1]), channels_last.shape

    def _apply(self, method: Any, samples: Tensor) -> Tensor:
        if isinstance(self.estimator, tuple(ALGORITHMS.values())):
            return method(samples)
        dtype = samples.dtype if samples.dtype in (torch.float32, torch.float64) else torch.float32
        return torch.as_tensor(np.asarray(method(samples.to("cpu", dtype).numpy())))

    def _reshape(self, reduced: Tensor, shape: torch.Size, like: Tensor, swap_2nd_and_last_dims: bool) -> Tensor:
        dtype = like.dtype if like.is_floating_point() else torch.float32
        reduced = reduced.to(like.device, dtype).reshape(*shape[:-1], reduced.shape[-1])
        return reduced.movedim(-1, 1) if swap_2nd_and_last_dims else reduced

    def fit_transform(self, tensor: Tensor, swap_2nd_and_last_dims: bool = True) -> Tensor:
        """Fit the estimator to ``tensor``'s channels and return the reduced tensor.

        Args:
            tensor (Tensor): activations, channels in dimension 1 (``(N, C, H, W)``) or, with
                ``swap_2nd_and_last_dims=False``, in the last dimension (``(N, H, W, C)``, ``(samples, C)``).
            swap_2nd_and_last_dims (bool, optional): whether the channels are dimension 1 (they are moved last
                for the reduction and back afterwards). Default: True.

        Returns:
            Tensor: ``tensor``'s shape with ``n_components`` in place of ``C``, on its device.
        """
        samples, shape = self._samples(tensor, swap_2nd_and_last_dims)
        if self._built and self.n_components > samples.shape[1]:
            raise ValueError(f"n_components={self.n_components} cannot reduce {samples.shape[1]} channels: "
                             f"n_components must be <= the number of channels")
        reduced = self._apply(self.estimator.fit_transform, samples)
        self._channels = samples.shape[1]
        return self._reshape(reduced, shape, tensor, swap_2nd_and_last_dims)

    def fit(self, tensor: Tensor, swap_2nd_and_last_dims: bool = True) -> ChannelReducer:
        """Fit the estimator to ``tensor``'s channels (see :meth:`fit_transform` for the arguments).

        Returns:
            ChannelReducer: the reducer itself.
        """
        self.fit_transform(tensor, swap_2nd_and_last_dims)
        return self

    def transform(self, tensor: Tensor, swap_2nd_and_last_dims: bool = True) -> Tensor:
        """Reduce new activations with the fitted estimator (arguments as for :meth:`fit_transform`).

        Returns:
            Tensor: ``tensor``'s shape with ``n_components`` in place of ``C``, on its device.
        """
        if self._channels is None:
            raise RuntimeError("ChannelReducer is not fitted yet: call fit or fit_transform first")
        if not callable(getattr(self.estimator, "transform", None)):
            raise AttributeError(f"{type(self.estimator).__name__} cannot transform new data (t-SNE and UMAP "
                                 "only embed the data they were fitted on): use fit_transform")
        samples, shape = self._samples(tensor, swap_2nd_and_last_dims)
        if samples.shape[1] != self._channels:
            raise ValueError(f"the reducer was fitted on {self._channels} channels, got {samples.shape[1]}")
        return self._reshape(self._apply(self.estimator.transform, samples), shape, tensor, swap_2nd_and_last_dims)

    @property
    def components(self) -> Tensor:
        """The fitted channel directions, ``(n_components, C)`` (the estimator's ``components_``)."""
        if self._channels is None:
            raise RuntimeError("ChannelReducer is not fitted yet: call fit or fit_transform first")
        components = getattr(self.estimator, "components_", None)
        if components is None:
            raise AttributeError(f"{type(self.estimator).__name__} has no components_ (t-SNE and UMAP embed the "
                                 "samples without channel directions)")
        return torch.as_tensor(components)


__all__ = ["ChannelReducer", "NMF", "PCA", "Estimator", "ALGORITHMS", "posneg"]
