"""Image statistics and small image tools at meitorch's path (``meitorch.tools.base_transforms``).

:func:`adjust_img_stats`, :func:`adjust_contrast` and :func:`adjust_contrast_with_mask` set an image's mean
luminance and RMS contrast (standard deviation) within pixel bounds; :func:`roll` shifts circularly;
:func:`gauss2d` and :func:`fit_gauss_envelope` are the Gaussian envelope of an image's energy;
:func:`remove_small_area` drops small connected lobes of a mask (:mod:`~mei.meitorch.tools.masks` builds on
these).

Where the bounds clip the image, meitorch searches a grid of gains and offsets; here the gain and the offset
that give the target mean and standard deviation of the *clipped* image are found by bisection
(:func:`fit_gain_offset`), so a reachable target is met to float precision, and where nothing clips the
answer is the closed form ``mu + sigma * (img - mean) / std``. Images may be NumPy arrays (an array comes
back) or tensors (a float32 tensor comes back); the statistics are those of NumPy (population standard
deviation), computed in float64.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _as_image(img: Any) -> tuple[Tensor, bool]:
    """``img`` as a float64 tensor with its singleton dimensions dropped, and whether it was a NumPy array."""
    is_array = isinstance(img, np.ndarray)
    image = torch.as_tensor(np.asarray(img) if is_array else img).detach().to("cpu", torch.float64)
    image = image.squeeze()
    if image.dim() < 2:
        raise ValueError(f"a mask needs an image of at least two dimensions (H, W), got shape {tuple(image.shape)}")
    return image, is_array


def _returned(mask: Tensor, is_array: bool) -> Any:
    return mask.numpy() if is_array else mask.to(torch.float32)


def label(mask: Tensor) -> tuple[Tensor, int]:
    """Connected components of a 2-D boolean mask (4-connectivity, as ``scipy.ndimage.label``):
    ``(labels, count)``, labels ``1..count`` numbered in raster order of their first pixel, 0 outside."""
    h, w = mask.shape
    ids = torch.arange(1, h * w + 1, dtype=torch.float64).reshape(h, w) * mask
    while True:  # every pixel takes the largest id among itself and its 4 neighbours in the mask
        padded = torch.nn.functional.pad(ids[None, None], (1, 1, 1, 1))[0, 0]
        neighbours = torch.stack([ids, padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        grown = neighbours.max(dim=0).values * mask
        if torch.equal(grown, ids):
            break
        ids = grown
    labels = torch.zeros(h, w, dtype=torch.int64)
    order: dict[float, int] = {}
    for value in ids[mask].tolist():  # raster order of first appearance
        order.setdefault(value, len(order) + 1)
    for value, index in order.items():
        labels[ids == value] = index
    return labels, len(order)


def remove_small_area(mask: Any, size_threshold: int = 50) -> Any:
    """The mask without its connected areas (4-connectivity) of fewer than ``size_threshold`` pixels."""
    image, is_array = _as_image(mask)
    binary = image > 0
    labels, count = label(binary)
    sizes = torch.bincount(labels.reshape(-1), minlength=count + 1)
    keep = (sizes >= size_threshold)[labels] & binary
    return keep.numpy() if is_array else keep


def fit_gauss_envelope(img: Any) -> tuple[tuple[float, float], Any, Any]:
    """A 2-D Gaussian fitted to the image's energy: ``(img - mean)^2`` (averaged over channels) normalized as a
    distribution. Returns ``((mu_x, mu_y), covariance 2x2, sqrt of the Gaussian at every pixel)``."""
    image, is_array = _as_image(img)
    while image.dim() > 2:
        image = image.mean(dim=0)
    h, w = image.shape
    vy, vx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    energy = (image - image.mean()) ** 2
    pdf = energy / energy.sum()
    mu_x, mu_y = float((vx * pdf).sum()), float((vy * pdf).sum())
    cov_xx = float((vx ** 2 * pdf).sum()) - mu_x ** 2
    cov_yy = float((vy ** 2 * pdf).sum()) - mu_y ** 2
    cov_xy = float((vx * vy * pdf).sum()) - mu_x * mu_y
    cov = torch.tensor([[cov_xx, cov_xy], [cov_xy, cov_yy]], dtype=torch.float64)
    offsets = torch.stack([vx.reshape(-1) - mu_x, vy.reshape(-1) - mu_y])
    whitened = torch.linalg.solve_triangular(torch.linalg.cholesky(cov), offsets, upper=False)
    gauss = torch.exp(-0.5 * (whitened ** 2).sum(dim=0)).reshape(h, w)
    envelope = gauss.sqrt()
    return (mu_x, mu_y), (cov.numpy() if is_array else cov), _returned(envelope, is_array)


def gauss2d(vx: Any, vy: Any, mu: tuple[float, float], cov: Any) -> Any:
    """The (unnormalized) 2-D Gaussian ``exp(-0.5 * v^T cov^-1 v)``, ``v = (vx - mu_x, vy - mu_y)``, at the
    coordinates ``vx``, ``vy`` (arrays or tensors of one shape); the result has their shape and kind."""
    is_array = isinstance(vx, np.ndarray)
    x, y = (torch.as_tensor(np.asarray(v) if is_array else v).to(torch.float64) for v in (vx, vy))
    offsets = torch.stack([x.reshape(-1) - float(mu[0]), y.reshape(-1) - float(mu[1])])
    chol = torch.linalg.cholesky(torch.as_tensor(np.asarray(cov), dtype=torch.float64))
    whitened = torch.linalg.solve_triangular(chol, offsets, upper=False)
    gauss = torch.exp(-0.5 * (whitened ** 2).sum(dim=0)).reshape(x.shape)
    return gauss.numpy() if is_array else gauss


def roll(tensor: Any, shift: int, axis: int) -> Any:
    """``tensor`` shifted circularly by ``shift`` places along ``axis`` (positive: towards higher indices; the
    last ``shift`` entries come first). ``roll(roll(t, k, a), -k, a)`` is ``t``. A shift larger than the axis
    wraps around (meitorch's fails). Works on tensors and NumPy arrays."""
    if isinstance(tensor, np.ndarray):
        return np.roll(tensor, int(shift), axis=int(axis))
    return torch.roll(tensor, int(shift), dims=int(axis))


def spatial_frequency(img: Any) -> tuple[Tensor, Tensor, Tensor]:
    """The magnitude of the image's centred 2-D Fourier transform (per channel for ``(C, H, W)``) and the
    frequencies of its columns and rows (in cycles per pixel, NumPy's ``fftfreq`` order): ``(freq_cols,
    freq_rows, magnitude)``, as meitorch's ``Analyze.compute_spatial_frequency`` returns them."""
    image = torch.as_tensor(np.asarray(img) if isinstance(img, np.ndarray) else img).detach().to(torch.float64)
    magnitude = torch.fft.fftshift(torch.fft.fft2(image), dim=(-2, -1)).abs()
    rows, cols = image.shape[-2:]
    return torch.fft.fftfreq(cols), torch.fft.fftfreq(rows), magnitude


def _weighted_stats(images: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and contrast of each row of ``images`` ``(K, P)`` under the pixel weights ``weight`` ``(P,)``:
    ``sum(w x) / sum(w)`` and ``sqrt(sum(w^2 (x - mean)^2) / P)`` (for unit weights NumPy's mean and std)."""
    mean = (images * weight).sum(dim=1) / weight.sum()
    spread = ((weight ** 2) * (images - mean[:, None]) ** 2).sum(dim=1) / images.shape[1]
    return mean, spread.sqrt()


def _offsets(delta: Tensor, weight: Tensor, gains: Tensor, mu: float, low: float, high: float) -> Tensor:
    """For each gain, the offset ``o`` with ``mean(clip(mu + o + gain * delta)) = mu`` (bisection; the clipped
    mean grows with ``o``), or the nearest end of the bracket when no offset reaches ``mu``."""
    reach = float(delta.abs().max()) * gains + (high - low) + abs(mu)
    below, above = -reach, reach.clone()
    for _ in range(52):
        middle = (below + above) / 2
        mean, _ = _weighted_stats((mu + middle[:, None] + gains[:, None] * delta).clamp(low, high), weight)
        rising = mean < mu
        below, above = torch.where(rising, middle, below), torch.where(rising, above, middle)
    return (below + above) / 2


def fit_gain_offset(delta: Tensor, weight: Tensor, mu: float, sigma: float, low: float, high: float,
                    max_gain: float = float("inf"), min_gain: float = 0.0) -> tuple[float, float, bool]:
    """The gain ``g`` and offset ``o`` for which ``clip(mu + o + g * delta, low, high)`` has mean ``mu`` and
    contrast ``sigma`` (weighted as :func:`_weighted_stats`), with ``min_gain <= g <= max_gain``.

    ``delta`` ``(P,)`` is the image minus its (weighted) mean. Without clipping the answer is the closed form
    ``g = sigma / contrast(delta)``, ``o = 0``. Otherwise the clipped contrast is searched over the gain (it
    grows with the gain until the image saturates) in rounds of 33 candidates, log-spaced over four decades
    first, then each narrowing the bracket 32-fold, every candidate with its offset by bisection; a contrast
    out of reach gives the gain of the largest reachable one.

    Returns:
        ``(gain, offset, clipped)``: ``clipped`` tells whether any pixel reached a bound.
    """
    _, contrast = _weighted_stats(delta[None], weight)
    gain = min(max(float(sigma) / float(contrast[0]), min_gain), max_gain)
    if float((mu + gain * delta).min()) >= low and float((mu + gain * delta).max()) <= high:
        return gain, 0.0, False
    lo, hi = gain, max(gain, min(max_gain, gain * 1e4))
    best = (gain, float(_offsets(delta, weight, torch.tensor([gain], dtype=delta.dtype), mu, low, high)[0]))
    for round_ in range(12):
        if hi - lo <= 1e-10 * hi:
            break
        gains = (torch.logspace(math.log10(lo), math.log10(hi), 33, dtype=delta.dtype) if round_ == 0
                 else torch.linspace(lo, hi, 33, dtype=delta.dtype))
        offsets = _offsets(delta, weight, gains, mu, low, high)
        _, spreads = _weighted_stats((mu + offsets[:, None] + gains[:, None] * delta).clamp(low, high), weight)
        reached = torch.nonzero(spreads >= sigma).reshape(-1)
        if len(reached) == 0:  # out of reach in this bracket: the largest contrast is the closest
            k = int(torch.argmax(spreads))
            best = (float(gains[k]), float(offsets[k]))
            break
        k = int(reached[0])
        best = (float(gains[k]), float(offsets[k]))
        if k == 0:
            break
        lo, hi = float(gains[k - 1]), float(gains[k])
    return best[0], best[1], True


def _flat(img: Any) -> tuple[Tensor, bool, torch.Size]:
    is_array = isinstance(img, np.ndarray)
    image = torch.as_tensor(np.asarray(img) if is_array else img).detach().to("cpu", torch.float64)
    return image.reshape(-1), is_array, image.shape


def _back(image: Tensor, shape: torch.Size, is_array: bool) -> Any:
    image = image.reshape(shape)
    return image.numpy() if is_array else image.to(torch.float32)


def adjust_img_stats(img: Any, mu: float, sigma: float, img_min: float = 0, img_max: float = 255,
                     mask: Any = None, max_gain: float = 6000, min_gain: float = 0.001, base_ratio: float = 1.05,
                     verbose: bool = False) -> tuple[Any, Any]:
    """The image with mean ``mu`` and standard deviation ``sigma`` within ``[img_min, img_max]``.

    The image's deviation from its mean (inside ``mask``; outside the mask the image is the background
    ``mu + offset``) is scaled by a gain and shifted by an offset so that the clipped result's mean and standard
    deviation, over the whole image, are the targets; a contrast the bounds cannot give comes out as the
    largest they can (gain at most ``max_gain`` and the gain that saturates every pixel).

    Args:
        img: the image, an array or a tensor of any shape.
        mu, sigma (float): the target mean and standard deviation.
        img_min, img_max (float, optional): pixel bounds. Default: 0, 255.
        mask (optional): weights of the image's pixels, its shape (1 inside, 0 outside). Default: all ones.
        max_gain, min_gain (float, optional): bounds of the gain. Default: 6000, 0.001.
        base_ratio (float, optional): meitorch's step between tried gains, > 1; the bisection here does not need
            it (accepted for compatibility, checked). Default: 1.05.
        verbose (bool, optional): print the result's statistics. Default: False.

    Returns:
        ``(image, unmasked image)``: the adjusted image, and the same gain and offset applied without the mask.
        A flat image (no deviation) gives a warning and the flat image ``mu``.
    """
    if not base_ratio > 1:
        raise ValueError(f"base_ratio must be > 1, got {base_ratio}")
    flat, is_array, shape = _flat(img)
    weight = _weights(mask, flat)
    delta = flat - float((flat * weight).sum() / weight.sum())
    masked = delta * weight
    if float(masked.abs().max()) < 1e-12:
        warnings.warn("Zero standard deviation detected.", stacklevel=2)
        gain, offset = 0.0, 0.0
    else:
        saturating = max(img_max - mu, mu - img_min) / float(masked.abs()[weight > 0].clamp_min(1e-12).min())
        gain, offset, _ = fit_gain_offset(masked, torch.ones_like(flat), mu, sigma, img_min, img_max,
                                          max_gain=min(saturating, max_gain), min_gain=min_gain)
    image = (mu + offset + gain * masked).clamp(img_min, img_max)
    unmasked = (mu + offset + gain * delta).clamp(img_min, img_max)
    if verbose:
        print(f"Selected version with mu={float(image.mean())} and std={float(image.std(unbiased=False))}")
    return _back(image, shape, is_array), _back(unmasked, shape, is_array)


def _weights(mask: Any, flat: Tensor) -> Tensor:
    """A mask as pixel weights of the flattened image (all ones for None)."""
    weight = torch.ones_like(flat) if mask is None else _flat(mask)[0].expand_as(flat).clone()
    if not bool((weight > 0).any()):
        raise ValueError("the mask selects no pixel")
    return weight


def _contrast_adjusted(img: Any, mask: Any, contrast: float, mu: float | None, img_min: float, img_max: float,
                       force: bool, verbose: bool) -> tuple[Any, bool, float]:
    """:func:`adjust_contrast_with_mask` (and, with ``mask=None``, :func:`adjust_contrast`)."""
    flat, is_array, shape = _flat(img)
    weight = _weights(mask, flat)
    masked_mean = float((flat * weight).sum() / weight.sum())
    mu = masked_mean if mu is None or mu < 0 else float(mu)
    delta = flat - masked_mean
    _, current = _weighted_stats(delta[None], weight)
    gain = 1.0 if contrast < 0 else float(contrast) / float(current[0])  # meitorch's plain gain
    inside = mu + gain * delta[weight > 0]
    clipped = float(inside.max()) > img_max or float(inside.min()) < img_min
    offset = 0.0
    if clipped and force and contrast >= 0:
        gain, offset, _ = fit_gain_offset(delta, weight, mu, contrast, img_min, img_max)
    if verbose:
        print("gain", gain, "offset", offset, "clipped", clipped)
    adjusted = (mu + offset + gain * delta).clamp(img_min, img_max)
    image = (adjusted * weight + mu * (1 - weight)).clamp(img_min, img_max)
    return _back(image, shape, is_array), clipped, float(image.std(unbiased=False))


def adjust_contrast(img: Any, contrast: float = -1, mu: float | None = -1, img_min: float = 0,
                    img_max: float = 255, force: bool = True, verbose: bool = False,
                    steps: int = 5000) -> tuple[Any, bool, float]:
    """The image with RMS contrast ``contrast`` and mean ``mu``, mindful of the bounds ``[img_min, img_max]``.

    Args:
        img: the image (array or tensor).
        contrast (float, optional): the target standard deviation; < 0 keeps the image's. Default: -1.
        mu (float, optional): the target mean; None or < 0 keeps the image's. Default: -1.
        img_min, img_max (float, optional): pixel bounds. Default: 0, 255.
        force (bool, optional): when the plain scaling would clip, find the gain and offset whose clipped image
            has the target mean and contrast (some pixels saturate); False scales plainly and clips. Default: True.
        verbose (bool, optional): print the gains. Default: False.
        steps (int, optional): meitorch's number of tried gains; the bisection here does not need it (accepted
            for compatibility). Default: 5000.

    Returns:
        ``(image, clipped, actual contrast)``: ``clipped`` is whether the target needs pixels beyond the bounds
        (information lost), ``actual contrast`` the result's standard deviation.
    """
    return _contrast_adjusted(img, None, contrast, mu, img_min, img_max, force, verbose)


def adjust_contrast_with_mask(img: Any, img_mask: Any = None, contrast: float = -1, mu: float | None = -1,
                              img_min: float = 0, img_max: float = 255, force: bool = True, verbose: bool = False,
                              mu_steps: int = 500, gain_steps: int = 500) -> tuple[Any, bool, float]:
    """:func:`adjust_contrast` inside a mask: the mean is the mask-weighted mean, the contrast
    ``sqrt(sum(m^2 (x - mean)^2) / (H * W))`` (meitorch's), and the result is
    ``adjusted * m + mu * (1 - m)``, clipped. ``mu_steps`` and ``gain_steps`` are meitorch's grid sizes,
    accepted for compatibility. Returns ``(image, clipped, standard deviation of the result)``."""
    return _contrast_adjusted(img, img_mask, contrast, mu, img_min, img_max, force, verbose)


__all__ = ["gauss2d", "fit_gauss_envelope", "roll", "remove_small_area", "label", "adjust_img_stats",
           "adjust_contrast", "adjust_contrast_with_mask", "fit_gain_offset", "spatial_frequency"]
