"""The colour correlation of your own images, captum.optim.dataset-style: a KLT matrix for :class:`ToRGB`.

:class:`~mei.optim.images.NaturalImage` renders decorrelated parameters and recorrelates them with a colour
matrix ``M`` (:class:`~mei.optim.images.ToRGB`): white noise in the parameters becomes pixels whose channel
covariance is ``M M^T``. The default ``M`` is ImageNet's. These helpers measure the channel covariance of
another dataset and turn it into its ``M``, the Karhunen-Loeve transform ``U sqrt(L)`` of ``cov = U L U^T``:

    >>> klt = dataset_klt_matrix(loader, normalize=True)
    >>> image = NaturalImage((224, 224), decorrelation_module=ToRGB(klt))

Any number of channels works (``ToRGB`` takes any square matrix).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


def image_cov(x: Tensor) -> Tensor:
    """The channel covariance of each image of a batch.

    Every position of an image is a sample of its ``C`` channels; each image's own channel means are removed
    and the sum of products is divided by the number of positions minus one.

    Args:
        x (Tensor): images ``(N, C, H, W)`` (or ``(N, C, ...)`` with any positional dimensions).

    Returns:
        Tensor: ``(N, C, C)``, one covariance per image (``.mean(0)`` for the batch's).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"image_cov takes a tensor of images (N, C, H, W), got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(f"image_cov takes images (N, C, H, W), got shape {tuple(x.shape)}")
    samples = x.flatten(2) if x.is_floating_point() else x.flatten(2).float()
    positions = samples.shape[-1]
    if positions < 2:
        raise ValueError(f"image_cov needs at least 2 positions per image, got shape {tuple(x.shape)}")
    centred = samples - samples.mean(dim=-1, keepdim=True)
    return centred @ centred.transpose(1, 2) / (positions - 1)


def _images(batch: Any) -> Tensor:
    """The images of one batch: the batch itself, or the first item of ``(images, labels, ...)``."""
    images = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    if not isinstance(images, Tensor):
        raise TypeError(f"each batch must be images (N, C, H, W) or a tuple (images, labels, ...), "
                        f"got {type(batch).__name__}")
    return images


def dataset_cov_matrix(loader: Iterable, show_progress: bool = False, device: str | torch.device = "cpu") -> Tensor:
    """The channel covariance of a dataset: :func:`image_cov` averaged over all its images.

    Args:
        loader (Iterable): a ``torch.utils.data.DataLoader`` (or any iterable) of batches of images
            ``(N, C, H, W)`` or of tuples ``(images, labels, ...)``.
        show_progress (bool, optional): show a tqdm bar over the batches. Default: False.
        device (str or torch.device, optional): where the covariances are computed. Default: ``"cpu"``.

    Returns:
        Tensor: ``(C, C)`` on ``device``, in the images' floating dtype (float32 for integer images); the sum
        over images is accumulated in float64.
    """
    if show_progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="Colour covariance", unit="batch")
    total: Tensor | None = None
    count, dtype = 0, torch.float32
    for batch in loader:
        covariances = image_cov(_images(batch).to(device))
        batch_sum = covariances.sum(dim=0).to("cpu", torch.float64)
        if total is None:
            total, dtype = batch_sum, covariances.dtype
        elif batch_sum.shape != total.shape:
            raise ValueError(f"the batches disagree on the number of channels: {total.shape[0]} and "
                             f"{batch_sum.shape[0]}")
        else:
            total += batch_sum
        count += covariances.shape[0]
    if total is None or count == 0:
        raise ValueError("the loader yielded no images")
    return (total / count).to(device, dtype)


def cov_matrix_to_klt(cov: Tensor, normalize: bool = False, epsilon: float = 1e-10) -> Tensor:
    """The Karhunen-Loeve transform of a covariance matrix: ``U sqrt(L + epsilon)`` for ``cov = U L U^T``.

    The columns are the eigenvectors scaled by the square root of their eigenvalues, largest first, each with
    its entry of largest magnitude positive (so the result is deterministic). ``klt @ klt.T`` is
    ``cov + epsilon * I``: :class:`~mei.optim.images.ToRGB` with this matrix turns white noise into data with
    covariance ``cov``.

    Args:
        cov (Tensor): a symmetric positive semi-definite ``(C, C)`` matrix.
        normalize (bool, optional): divide by the largest column norm, so that the largest column has norm 1,
            as ``ToRGB("klt")`` scales the ImageNet matrix (the correlation is kept, the overall scale is not).
            Default: False.
        epsilon (float, optional): added to the eigenvalues before the square root. Default: 1e-10.

    Returns:
        Tensor: ``(C, C)``, on ``cov``'s device; float64 for a float64 ``cov``, else float32.
    """
    cov = torch.as_tensor(cov)
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square (C, C) matrix, got shape {tuple(cov.shape)}")
    if not torch.isfinite(cov).all():
        raise ValueError("cov holds NaN or infinite values")
    if not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
    dtype = cov.dtype if cov.dtype in (torch.float32, torch.float64) else torch.float32
    work = cov.to(dtype)
    scale = float(work.abs().max()) if work.numel() else 0.0
    if not torch.allclose(work, work.T, rtol=1e-5, atol=1e-6 * scale):
        raise ValueError("cov must be symmetric")
    eigenvalues, eigenvectors = torch.linalg.eigh((work + work.T) / 2)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first
    if eigenvalues.numel() and float(eigenvalues[-1]) < -1e-5 * max(float(eigenvalues[0]), 0.0):
        raise ValueError(f"cov must be positive semi-definite, but has the eigenvalue {float(eigenvalues[-1]):.4g}")
    largest = eigenvectors.abs().argmax(dim=0, keepdim=True)
    eigenvectors = eigenvectors * eigenvectors.gather(0, largest).sign()
    klt = eigenvectors * torch.sqrt(eigenvalues.clamp_min(0) + epsilon)
    if normalize:
        klt = klt / torch.linalg.vector_norm(klt, dim=0).max().clamp_min(torch.finfo(dtype).tiny)
    return klt


def dataset_klt_matrix(loader: Iterable, normalize: bool = False, show_progress: bool = False,
                       device: str | torch.device = "cpu", epsilon: float = 1e-10) -> Tensor:
    """The KLT colour matrix of a dataset: :func:`cov_matrix_to_klt` of :func:`dataset_cov_matrix`.

    Pass it to :class:`~mei.optim.images.ToRGB` (``ToRGB(klt)``), and that to
    :class:`~mei.optim.images.NaturalImage` (``decorrelation_module=ToRGB(klt)``), to recorrelate the
    rendered colours as in this dataset; ``normalize=True`` scales it like the ImageNet default.

    Args:
        loader (Iterable): batches of images ``(N, C, H, W)`` or tuples ``(images, labels, ...)``.
        normalize (bool, optional): see :func:`cov_matrix_to_klt`. Default: False.
        show_progress (bool, optional): show a tqdm bar over the batches. Default: False.
        device (str or torch.device, optional): where the covariances are computed. Default: ``"cpu"``.
        epsilon (float, optional): see :func:`cov_matrix_to_klt`. Default: 1e-10.

    Returns:
        Tensor: ``(C, C)`` on ``device``.
    """
    cov = dataset_cov_matrix(loader, show_progress=show_progress, device=device)
    return cov_matrix_to_klt(cov, normalize=normalize, epsilon=epsilon)


__all__ = ["image_cov", "dataset_cov_matrix", "cov_matrix_to_klt", "dataset_klt_matrix"]
