"""The report-card table template: :func:`mei.analysis.report_card.report_card` for every MEI of an MEI table."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

import datajoint as dj
import torch
from torch import Tensor

from ..analysis.report_card import Objective, _responses, report_card
from ..modules import ConstrainedOutputModel, EnsembleModel
from .legacy_bridge.guard import LegacyGuard


def _batch_inputs(batch: Any) -> Tensor:
    if isinstance(batch, Mapping):
        return batch["inputs"] if "inputs" in batch else next(iter(batch.values()))
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def loader_images(dataloaders: Any, tier: str = "train", data_key: str | None = None) -> Tensor:
    """All inputs of one tier's loader (nnfabrik layout ``{tier: {data_key: DataLoader}}``), concatenated."""
    loaders = dataloaders[tier] if isinstance(dataloaders, Mapping) and tier in dataloaders else dataloaders
    if isinstance(loaders, Mapping):
        loaders = loaders[data_key] if data_key in loaders else next(iter(loaders.values()))
    return torch.cat([_batch_inputs(batch) for batch in loaders])


class ReportCardTemplate(LegacyGuard, dj.Computed):
    """Template of the report-card table: the metrics of :func:`report_card` for every MEI of ``mei_table``.

    Class attributes: ``mei_table`` (your :class:`mei.main.MEITemplate` table), ``max_shift`` (for
    :func:`jitter_robustness`, default 2). Hooks to override: :meth:`natural_images` (default: the training
    inputs of the MEI's trained model), :meth:`transfer_objectives` (default: each member of an ensemble
    model, so ``transfer`` says how much the members agree), :meth:`true_rf` (default: unknown, ``None``).

    Attributes: the MEI's key; ``activation``, ``best_natural``, ``activation_ratio``, ``transfer`` (null
    without other models), ``transfer_ratios`` (json), ``jitter_robustness``, ``peak_frequency``
    (cycles/pixel), ``spectrum`` (json), ``rf_correlation`` (null where the truth is unknown).
    """

    mei_table: ClassVar[Any] = None
    max_shift: ClassVar[int] = 2
    _image_cache: ClassVar[dict[Any, Tensor]] = {}
    _response_cache: ClassVar[weakref.WeakKeyDictionary] = weakref.WeakKeyDictionary()

    definition = """
    # report card of an MEI
    -> self.mei_table
    ---
    activation: float64              # the objective's value for the MEI
    best_natural: float64            # its largest value over the natural images
    activation_ratio: float64        # activation / best_natural
    transfer=null: float64           # mean activation ratio of the transfer models
    transfer_ratios: json            # activation ratio per transfer model
    jitter_robustness: float64       # mean activation under shifts up to max_shift / activation
    peak_frequency: float64          # peak of the radial power spectrum, cycles/pixel
    spectrum: json                   # {"frequencies": [...], "power": [...]}
    rf_correlation=null: float64     # correlation with the true receptive field, where known
    """

    def natural_images(self, key: Mapping[str, Any]) -> Tensor:
        """The natural images to compare with (default: the training inputs of the trained model)."""
        mei_table = self.mei_table()
        trained = mei_table.trained_model_table()
        cache_key = (trained.full_table_name, tuple(sorted((k, str(key[k])) for k in trained.primary_key)))
        if cache_key not in self._image_cache:
            if len(self._image_cache) >= 4:  # keep the last few: keys of several models come interleaved
                self._image_cache.pop(next(iter(self._image_cache)))
            self._image_cache[cache_key] = loader_images(mei_table._dataloaders(key)).float()
        return self._image_cache[cache_key]

    def transfer_objectives(self, key: Mapping[str, Any], model: torch.nn.Module) -> list[Objective]:
        """Objectives for :func:`transfer` (default: each member of an ensemble of two or more)."""
        if isinstance(model, EnsembleModel) and len(model.members) > 1:
            return [self.mei_table().get_objective(member, key) for member in model.members]
        return []

    def true_rf(self, key: Mapping[str, Any]) -> Tensor | None:
        """The true receptive field (or basis) of the MEI's neuron, where known (default: ``None``)."""
        return None

    def natural_responses(self, objective: Objective, images: Tensor) -> Tensor:
        """The objective's values for ``images``; for a model constrained to one unit, every unit of the
        model is computed once and kept while the model lives, so the next neuron costs nothing."""
        if not isinstance(objective, ConstrainedOutputModel):
            return _responses(objective, images)
        values = self._all_units(objective.model, images, objective.forward_kwargs)[:, objective.constraint]
        return objective.target_fn(values) if objective.target_fn is not None else values

    def _all_units(self, model: torch.nn.Module, images: Tensor, forward_kwargs: Mapping[str, Any]) -> Tensor:
        """Every output unit of ``model`` for ``images``, cached per model; an ensemble averages its members'."""
        entries = self._response_cache.setdefault(model, [])
        kwargs = tuple(sorted(forward_kwargs.items()))
        for cached_images, cached_kwargs, values in entries:
            if cached_images is images and cached_kwargs == kwargs:
                return values
        if isinstance(model, EnsembleModel):
            values = torch.stack([self._all_units(m, images, forward_kwargs) for m in model.members]).mean(dim=0)
        else:
            with torch.no_grad():
                values = torch.cat([model(images[i:i + 512], **forward_kwargs) for i in range(0, len(images), 512)])
        entries[:] = [*entries[-3:], (images, kwargs, values)]
        return values

    def make(self, key: dict[str, Any]) -> None:
        """Fetch the MEI and its objective, compute :func:`report_card`, insert one row."""
        mei_table = self.mei_table()
        mei = mei_table.fetch_mei(key).float()
        model = mei_table.load_model(key)
        objective = mei_table.get_objective(model, key)
        others = self.transfer_objectives(key, model)
        images = self.natural_images(key)
        natural = [self.natural_responses(o, images) for o in (objective, *others)]
        card = report_card(objective, mei, images, others, self.true_rf(key), self.max_shift, natural)
        card.pop("best_index")
        self.insert1({**key, **card})
