"""MEI masks at meitorch's path (``meitorch.tools.masks``): :func:`mei_mask`, :func:`mei_tight_mask`, the
Gaussian-envelope mask and :func:`mask_image`.

A mask is a float image in ``[0, 1]`` of the MEI's height and width, 1 where the MEI matters. The steps follow
meitorch's (thresholds, removal of small lobes, convex hull, Gaussian expansion and smoothing, erosion); the
image operations are this package's own, in torch (Gaussian filtering is :func:`mei.engine.kernels.gaussian_blur`;
the labelling, hull and erosion are below). Images may be tensors or NumPy arrays, 2-D ``(H, W)`` or with
leading singleton/channel dimensions; a mask comes back as the same kind (array in, array out). For an image
of several channels the mask is computed from all of them (a pixel counts if it does in any channel) and is one
``(H, W)`` mask.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...engine.kernels import gaussian_blur
from ..linearmei import activation_tensor
from .base_transforms import _as_image, _returned, fit_gauss_envelope, label, remove_small_area


def _blur(mask: Tensor, sigma: float) -> Tensor:
    """scipy-style ``gaussian_filter`` of a 2-D float mask (truncated at 4 sigma, mirrored edges)."""
    return gaussian_blur(mask[None, None], float(sigma), (-1, -2), padding="reflect")[0, 0]


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull_image(mask: Tensor) -> Tensor:
    """The pixels whose centres lie in the convex hull of the mask's pixels (each pixel a unit square), as
    ``skimage.morphology.convex_hull_image`` draws it; an empty mask stays empty."""
    h, w = mask.shape
    rows = torch.nonzero(mask.any(dim=1)).reshape(-1).tolist()
    if not rows:
        return torch.zeros(h, w, dtype=torch.bool)
    points: set[tuple[float, float]] = set()
    for r in rows:  # the hull of the squares only needs each row's outermost pixels
        cols = torch.nonzero(mask[r]).reshape(-1)
        for c in (int(cols[0]), int(cols[-1])):
            points.update({(r - 0.5, c - 0.5), (r - 0.5, c + 0.5), (r + 0.5, c - 0.5), (r + 0.5, c + 0.5)})
    ordered = sorted(points)
    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in ordered:  # Andrew's monotone chain
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(ordered):
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]  # counterclockwise in (row, col)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    inside = torch.ones(h, w, dtype=torch.bool)
    for (r0, c0), (r1, c1) in zip(hull, hull[1:] + hull[:1], strict=True):
        inside &= (r1 - r0) * (xx - c0) - (c1 - c0) * (yy - r0) >= -1e-9
    return inside


def binary_erosion(mask: Tensor) -> Tensor:
    """Erosion by the 4-connected cross (``scipy.ndimage.binary_erosion`` with a cross, border outside): a pixel
    stays only if it and its 4 neighbours are in the mask."""
    padded = torch.nn.functional.pad(mask[None, None].to(torch.float64), (1, 1, 1, 1))[0, 0] > 0
    return (mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])


def _plane(image: Tensor) -> Tensor:
    """The per-pixel deviation from the mean, reduced over leading (channel) dimensions by its largest size."""
    delta = (image - image.mean()).abs()
    while delta.dim() > 2:
        delta = delta.amax(dim=0)
    return delta


def gaussian_mask(img: Any, factor: float) -> Any:
    """The fitted Gaussian envelope (:func:`fit_gauss_envelope`) to the power ``factor`` (strength of the mask)."""
    *_, mask = fit_gauss_envelope(img)
    return mask ** factor


def gaussian_mask_with_info(img: Any, factor: float) -> tuple[Any, float, float, float, float, float]:
    """:func:`gaussian_mask` and the fit: ``(mask, mu_x, mu_y, cov_x, cov_y, cov_xy)``."""
    (mu_x, mu_y), cov, mask = fit_gauss_envelope(img)
    return mask ** factor, mu_x, mu_y, float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1])


def mei_mask(img: Any, delta_thr: float = 0.5, size_thr: int = 50, expansion_sigma: float = 3,
             expansion_thr: float = 0.3, filter_sigma: float = 2) -> Any:
    """The MEI's mask: pixels deviating from the mean by more than ``delta_thr``, without lobes smaller than
    ``size_thr`` pixels, filled to their convex hull, expanded (Gaussian of ``expansion_sigma``, thresholded at
    ``expansion_thr``) and smoothed (Gaussian of ``filter_sigma``).

    Returns:
        the mask ``(H, W)`` in ``[0, 1]`` (an array for an array, a tensor for a tensor); all zeros if no pixel
        deviates by more than ``delta_thr``.
    """
    image, is_array = _as_image(img)
    mask = _plane(image) > delta_thr
    mask = torch.as_tensor(remove_small_area(mask, size_threshold=size_thr))
    mask = convex_hull_image(mask)
    mask = _blur(mask.to(torch.float64), expansion_sigma) > expansion_thr
    return _returned(_blur(mask.to(torch.float64), filter_sigma), is_array)


def _activation_of(out: Any) -> float:
    """One number from an operation's output: a tensor (its mean), or a dict's ``activation`` (else minus its
    ``objective``, meitorch's minimized loss)."""
    return float(activation_tensor(out).mean())


def mei_tight_mask(img: Any, operation: Callable[[Tensor], Any], device: str | torch.device = "cpu",
                   stdev_size_thr: float = 1, filter_sigma: float = 1,
                   target_reduction_ratio: float = 0.9) -> tuple[Any, float]:
    """The tightest mask that keeps the MEI's activation above ``target_reduction_ratio`` of the masked MEI's.

    The start is the convex hull of the pixels deviating from the mean by more than ``stdev_size_thr`` standard
    deviations of the deviation; it is eroded (4-connected cross) while the activation of the masked image
    ``fm * img + (1 - fm) * mean`` (``fm`` the mask smoothed by ``filter_sigma``) stays above the ratio.

    Args:
        img: the MEI, ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)``.
        operation: called on the masked image as a batch ``(1, C, H, W)`` on ``device``; returns the activation
            (a tensor) or meitorch's dict of losses (its ``activation``, else minus its ``objective``).
        device: where the operation runs.

    Returns:
        ``(mask, reduction ratio)``: the smoothed mask of the last erosion step whose activation fell to or below
        the ratio (as meitorch returns it), and that activation over the first one.

    Raises:
        ValueError: the masked MEI does not drive the operation (activation <= 0, where a ratio means nothing),
            or 100 erosions did not lower the activation enough.
    """
    image, is_array = _as_image(img)
    batch_shape = (1, *([1] * (3 - image.dim())), *image.shape) if image.dim() <= 3 else (1, *image.shape)
    mean = image.mean()

    def masked_activation(mask: Tensor) -> tuple[Tensor, float]:
        smooth = _blur(mask.to(torch.float64), filter_sigma)
        masked = smooth * image + (1 - smooth) * mean
        with torch.no_grad():
            out = operation(masked.reshape(batch_shape).to(device=device, dtype=torch.float32))
        return smooth, _activation_of(out)

    fluctuation = _plane(image)
    mask = convex_hull_image(fluctuation > fluctuation.std() * stdev_size_thr)
    smooth, baseline = masked_activation(mask)
    if baseline <= 0:
        raise ValueError(f"the masked MEI must drive the operation (activation > 0) for a reduction ratio to mean "
                         f"anything, got {baseline:.4g}")
    activation, count = baseline, 0
    while activation > baseline * target_reduction_ratio:
        mask = binary_erosion(mask)
        smooth, activation = masked_activation(mask)
        count += 1
        if count > 100:
            raise ValueError("The activation does not reduce for the given setting (100 erosions)")
    return _returned(smooth, is_array), activation / baseline


def mask_image(img: Any, mask: str | None = "gaussian", background: float = 0, operation: Callable[[Tensor], Any]
               = lambda x: x, device: str | torch.device = "cpu", **mask_params: Any) -> Any:
    """``img * m + background * (1 - m)`` for the mask ``m`` of kind ``mask``: ``"gaussian"`` (``factor``,
    default 1/4), ``"meitorch"`` (:func:`mei_mask`), ``"mei_tight"`` (:func:`mei_tight_mask` with ``operation``)
    or None (the image unchanged)."""
    if mask is None:
        return img
    if mask == "gaussian":
        m = gaussian_mask(img, mask_params.get("factor", 1 / 4))
    elif mask == "meitorch":
        m = mei_mask(img, **mask_params)
    elif mask == "mei_tight":
        m, _ = mei_tight_mask(img, operation, device, **mask_params)
    else:
        raise ValueError(f"Unknown mask type: {mask!r} (gaussian, meitorch, mei_tight or None)")
    if isinstance(img, np.ndarray):
        return img * m + np.full_like(img, background) * (1 - m)
    image = torch.as_tensor(img)
    m = torch.as_tensor(m, dtype=image.dtype, device=image.device)
    return image * m + background * (1 - m)


__all__ = ["mei_mask", "mei_tight_mask", "gaussian_mask", "gaussian_mask_with_info", "fit_gauss_envelope",
           "mask_image", "remove_small_area", "label", "convex_hull_image", "binary_erosion"]
