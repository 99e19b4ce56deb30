"""Per-image random streams for components.

The engine seeds one :class:`torch.Generator` per image it optimizes and makes them current with
:func:`seeded`. Random components (initial guesses, jitter, random crops …) draw through the helpers here,
image by image, so that

* a run is reproducible from its seed and leaves the caller's global RNG state untouched, and
* K images optimized together in one batch draw exactly the numbers each would draw alone.

Outside :func:`seeded`, the helpers fall back to torch's global generator (one image's worth per call).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence

import torch

_generators: contextvars.ContextVar[tuple[torch.Generator, ...] | None] = contextvars.ContextVar(
    "mei_generators", default=None
)
_views: contextvars.ContextVar[int] = contextvars.ContextVar("mei_views", default=1)


@contextlib.contextmanager
def seeded(seeds: Sequence[int], devices: Sequence[torch.device] = ()) -> Iterator[tuple[torch.Generator, ...]]:
    """Make one CPU generator per seed current; also fork and seed torch's global RNG with ``seeds[0]``.

    The global RNG is seeded for user components that do not use these helpers; it is restored on exit,
    so the caller's random state is unchanged. ``devices`` lists CUDA devices whose RNG is forked too.
    """
    if not seeds:
        raise ValueError("seeded() needs at least one seed")
    generators = tuple(torch.Generator().manual_seed(int(seed)) for seed in seeds)
    cuda_devices = [d for d in devices if torch.device(d).type == "cuda"]
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(int(seeds[0]))
        token = _generators.set(generators)
        try:
            yield generators
        finally:
            _generators.reset(token)


@contextlib.contextmanager
def views(n_views: int) -> Iterator[None]:
    """Inside the block a batch holds ``n_views`` views of each image, view-major (row ``v * K + k`` is view ``v``
    of image ``k``): image ``k``'s stream serves all its views, one after the other, so every view draws
    different numbers and image ``k`` draws the same ones whether it is optimized alone or with others."""
    if int(n_views) < 1:
        raise ValueError(f"n_views must be >= 1, got {n_views}")
    token = _views.set(int(n_views) * _views.get())
    try:
        yield
    finally:
        _views.reset(token)


def generators(n_images: int) -> Sequence[torch.Generator | None]:
    """The current per-image generators for a batch of ``n_images`` (``None`` = torch's global RNG)."""
    current = _generators.get()
    if current is None:
        return [None] * n_images
    n_views = _views.get()
    if n_views > 1 and len(current) * n_views == n_images:
        return current * n_views
    if len(current) != n_images:
        if len(current) == 1:
            return [current[0]] * n_images
        raise RuntimeError(f"{len(current)} random streams are seeded but the batch holds {n_images} images")
    return current


def per_image(n_images: int, draw: Callable[[torch.Generator | None], torch.Tensor]) -> torch.Tensor:
    """Stack ``draw(generator)`` over the images of a batch (first dimension ``n_images``)."""
    return torch.stack([draw(g) for g in generators(n_images)])


def randn(shape: Sequence[int]) -> torch.Tensor:
    """Standard-normal CPU tensor of ``shape`` (first dimension = images), drawn image by image."""
    shape = tuple(int(s) for s in shape)
    return per_image(shape[0], lambda g: torch.randn(shape[1:], generator=g))


def rand(shape: Sequence[int]) -> torch.Tensor:
    """Uniform [0, 1) CPU tensor of ``shape`` (first dimension = images), drawn image by image."""
    shape = tuple(int(s) for s in shape)
    return per_image(shape[0], lambda g: torch.rand(shape[1:], generator=g))


def randint(low: int, high: int, n_images: int, size: Sequence[int] = ()) -> torch.Tensor:
    """Integers in ``[low, high)`` of shape ``(n_images, *size)``, drawn image by image (CPU, int64)."""
    return per_image(n_images, lambda g: torch.randint(low, high, tuple(size), generator=g))
