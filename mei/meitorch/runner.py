"""One meitorch generation = one run of the package's engine (:func:`mei.optimization.optimize`).

:func:`generate` assembles the engine's components from a parsed config: the parameterization of the mode
(:mod:`mei.meitorch.modes`) decodes the optimized tensor into images, the augmentation and the operation
follow, diversity is the regularization, Fourier fall-off the preconditioner, denoiser and norm the
postprocessing. A :class:`mei.tracking.Tracker` records the losses of every step and the image snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..engine import rng
from ..objectives import Objective
from ..optimization import MEI as Engine
from ..optimization import no_regularization, optimize
from ..stoppers import NumIterations
from ..tracking import Tracker
from .augment import Augmentation
from .diversity import DiversityReward
from .optimizers import optimizer_factory
from .plan import prepare
from .result import MEIResult

Operation = Callable[[Tensor], Mapping[str, Tensor]]


class SamplePipeline:
    """The engine's transform: decode the parameters into images (kept in ``last_images``), then augment.

    The engine optimizes one "image" (the whole batch's parameters), so what it hands on keeps a first
    dimension of 1: the step's ``(n, C, H, W)`` images as one entry ``(1, n, C, H, W)``; ``fresh`` tells the
    objective that it is looking at them (and not at the raw parameters of the final evaluation).
    """

    def __init__(self, parameterization: Any, augmentation: Augmentation) -> None:
        self.parameterization, self.augmentation = parameterization, augmentation
        self.last_images: Tensor | None = None
        self.fresh = False

    def __call__(self, x: Tensor, i_iter: int) -> Tensor:
        self.last_images = self.parameterization.decode(x, i_iter)
        self.fresh = True
        return self.augmentation(self.last_images, i_iter)[None]


class OperationObjective:
    """The engine's function: ``-operation(images)["objective"]`` (the engine maximizes; meitorch minimizes).

    On the pipeline's output it evaluates the step's images; called on the raw parameter tensor (the
    engine's final evaluation), it evaluates the images the result reports. Keeps the losses of the last step
    (detached) in ``last`` and those of the final evaluation in ``final``.
    """

    def __init__(self, operation: Operation, parameterization: Any, pipeline: SamplePipeline) -> None:
        self.operation, self.parameterization, self.pipeline = operation, parameterization, pipeline
        self.last: dict[str, Tensor] = {}
        self.final: dict[str, Tensor] = {}

    def __call__(self, x: Tensor) -> Tensor:
        raw = not self.pipeline.fresh
        self.pipeline.fresh = False
        losses = self.operation(self.parameterization.point(x) if raw else x[0])
        objective = _objective_of(losses)
        scalars = {name: _detached(value) for name, value in losses.items() if _is_scalar(value) or _is_number(value)}
        if raw:
            self.final = scalars
        else:
            self.last = scalars
        return -objective.reshape(1)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, Tensor) and value.numel() == 1


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _detached(value: Tensor | float) -> Tensor:
    return value.detach() if isinstance(value, Tensor) else torch.tensor(float(value))


def _objective_of(losses: Any) -> Tensor:
    if not isinstance(losses, Mapping) or "objective" not in losses:
        raise TypeError("the operation must return a dict of losses with the key 'objective', got "
                        f"{type(losses).__name__}{'' if not isinstance(losses, Mapping) else sorted(losses)}")
    objective = losses["objective"]
    if not _is_scalar(objective) or not objective.is_floating_point():
        shape = tuple(objective.shape) if isinstance(objective, Tensor) else type(objective).__name__
        raise ValueError(f"the operation's 'objective' must be one floating-point number for the whole batch "
                         f"(reduce it, e.g. with torch.mean), got {shape}")
    return objective


class LossRecorder(Objective):
    """Tracker objective: the operation's losses (and the diversity, if any) of every step, as tensors."""

    def __init__(self, objective: OperationObjective, diversity: DiversityReward | None) -> None:
        self.objective, self.diversity = objective, diversity

    def compute(self, current_state: Any) -> dict[str, Tensor]:
        losses = dict(self.objective.last)
        if self.diversity is not None and self.diversity.last is not None:
            losses["diversity"] = self.diversity.last.detach()
        return losses


class Snapshots(Objective):
    """Tracker objective: a CPU copy of the images every ``save_every`` steps (and at the last step)."""

    def __init__(self, save_every: int, n_iter: int, take: Callable[[Any], Tensor]) -> None:
        self.save_every, self.n_iter, self.take = save_every, n_iter, take

    def wants(self, i_iter: int) -> bool:
        return self.save_every > 0 and (i_iter % self.save_every == 0 or i_iter == self.n_iter - 1)

    def compute(self, current_state: Any) -> Tensor:
        return self.take(current_state).detach().cpu().clone()


def _last_images(pipeline: SamplePipeline) -> Tensor:
    images = pipeline.last_images
    assert images is not None  # snapshots are taken after a step, whose transform set them
    return images


def _snapshot_source(mode: str, parameterization: Any, pipeline: SamplePipeline) -> Callable[[Any], Tensor]:
    if mode == "transformation":
        return lambda state: _last_images(pipeline)
    return lambda state: parameterization.point(state.post_processed_input)


def generate(operation: Operation, shape: tuple[int, ...], device: torch.device, mode: str,
             config: Mapping[str, Any] | None, seed: int) -> MEIResult:
    """Validate ``config`` for ``mode`` and run the engine once; see :class:`mei.meitorch.mei.MEI`."""
    settings, parameterization = prepare(shape, mode, config, seed)
    pointrf = None
    if settings["gradient_rf"]:
        with rng.seeded([seed], devices=[device]):
            operation, pointrf = gradient_rf_operation(operation, shape, device)
    pipeline = SamplePipeline(parameterization, Augmentation(settings["scaler"], settings["jitter"],
                                                             settings["train_norm"]))
    objective = OperationObjective(operation, parameterization, pipeline)
    diversity = DiversityReward(pipeline, **settings["diverse_params"]) if settings["diverse"] else None
    # meibatch normalizes each sample's gradient: the samples lie along dim 1 of the pixel / variational tensor
    factory = optimizer_factory(settings["optimizer"], settings["optimizer_params"],
                                batch_dim=None if mode == "transformation" else 1)
    with rng.seeded([seed], devices=[device]):
        initial = parameterization.initial().to(device)  # the run's first draws: start() sees the same
        engine = Engine(objective, initial, factory, transform=pipeline,
                        regularization=diversity or no_regularization,
                        precondition=parameterization.precondition, postprocessing=parameterization.postprocess)
        tracker = Tracker(losses=LossRecorder(objective, diversity), images=Snapshots(
            settings["save_every"], settings["iter_n"], _snapshot_source(mode, parameterization, pipeline)))
        score, final = optimize(engine, NumIterations(settings["iter_n"]), tracker)
    result = MEIResult.from_run(mode, settings, parameterization, final, tracker.log, seed)
    result.pointrf, result.device = pointrf, device
    # pixel / variational: the engine's final evaluation saw exactly result.mei; a generator's is of other noise
    final_losses = objective.final if mode != "transformation" else None
    result.result_dict = final_stats(operation, result.mei, device, seed, final_losses)
    if pointrf is not None:
        result.result_dict["pointrf"] = pointrf
    return result


def final_stats(operation: Operation, mei: Tensor, device: torch.device, seed: int,
                losses: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """meitorch's summary of a result: every scalar the operation returns on the final MEI (its
    ``activation`` among them; ``losses`` if they are already known), and the MEI's mean and standard deviation."""
    if losses is None:
        with torch.no_grad(), rng.seeded([seed], devices=[device]):
            losses = operation(mei.to(device))
    stats: dict[str, Any] = {name: float(value) for name, value in losses.items()
                             if _is_scalar(value) or _is_number(value)}
    stats.update(img_mean=float(mei.mean()), img_std=float(mei.std()))
    return stats


def gradient_rf_operation(operation: Operation, shape: tuple[int, ...], device: torch.device) -> tuple[
        Operation, Tensor]:
    """meitorch's ``gradient_rf``: the operation's linear model at a blank image.

    The gradient ``rf`` of the operation's objective at one all-zero image ``(1, *shape)`` is its "point
    receptive field"; the returned operation is ``inputs -> {"objective": (inputs * rf).sum(), "activation":
    -objective}`` (summed over the batch, as meitorch's linear model is), whose optimum under a norm constraint is
    ``-rf`` normalized.

    Returns:
        tuple: ``(linear operation, rf)``, ``rf`` a CPU tensor of ``shape``.
    """
    blank = torch.zeros(1, *shape, device=device, requires_grad=True)
    objective = _objective_of(operation(blank))
    (rf,) = torch.autograd.grad(objective, blank, allow_unused=True)
    rf = torch.zeros_like(blank) if rf is None else rf.detach()

    def linear_model(inputs: Tensor) -> dict[str, Tensor]:
        objective = (inputs * rf).sum()
        return {"objective": objective, "activation": -objective}

    return linear_model, rf[0].cpu()
