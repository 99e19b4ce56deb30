"""The demo report's sections for what comes after the MEIs: most discriminative stimuli and in-silico tuning.

:func:`analysis_sections` reads the demo's :class:`~mei.demo.tables.MDS` and :class:`~mei.demo.tables.Tuning`
rows of a run and draws two figures: each cluster's stimulus beside its members' MEIs, and each neuron's
orientation and spatial-frequency tuning curves with the fitted preferred values against the true ones.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis.mds import adjusted_rand_index, alignment_offsets, translate
from ..analysis.tuning import rf_centres
from .page import kind_label


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show(ax: Any, image: np.ndarray, title: str = "", colour: str = "black") -> None:
    limit = float(np.abs(image).max()) or 1.0
    ax.imshow(image, cmap="gray", vmin=-limit, vmax=limit)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
    if title:
        ax.set_title(title, fontsize=7, color=colour)


def centred(meis: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``(h, w)`` MEIs moved by whole pixels so that each one's centre (:func:`~mei.analysis.tuning.rf_centres`)
    is the image centre, as an aligned MDS shows them the stimuli."""
    stack = torch.as_tensor(np.stack([np.asarray(m, dtype=np.float32) for m in meis]))
    offsets = alignment_offsets(rf_centres(stack), *stack.shape[-2:])
    return list(translate(stack, -offsets).numpy())


def plot_mds(stimuli: Sequence[np.ndarray], clusters: Sequence[int], meis: Sequence[np.ndarray],
             labels: Sequence[str], path: Path, members_shown: int = 8) -> Path:
    """One row per cluster: its most discriminative stimulus (left, framed red), then its members' MEIs.

    Args:
        stimuli (list[np.ndarray]): ``(h, w)`` per cluster.
        clusters (list[int]): the cluster of each neuron.
        meis (list[np.ndarray]): ``(h, w)`` per neuron, same order.
        labels (list[str]): a title per neuron (e.g. its id and true type).
        path (Path): where to save the PNG.
        members_shown (int, optional): most members shown per cluster. Default: 8.
    """
    plt = _pyplot()
    rows, columns = len(stimuli), 1 + members_shown
    height, width = np.asarray(stimuli[0]).shape[-2:]
    figure, axes = plt.subplots(rows, columns, squeeze=False,
                                figsize=(columns * 1.4, rows * (1.4 * height / width + 0.35) + 0.3))
    for ax in axes.flat:
        ax.axis("off")
    for k, stimulus in enumerate(stimuli):
        members = [i for i, c in enumerate(clusters) if c == k]
        axes[k][0].axis("on")
        _show(axes[k][0], np.asarray(stimulus), f"cluster {k} ({len(members)})", colour="red")
        for j, i in enumerate(members[:members_shown]):
            axes[k][1 + j].axis("on")
            _show(axes[k][1 + j], np.asarray(meis[i]), labels[i])
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def plot_tuning(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], path: Path,
                truth: Sequence[Mapping[str, float] | None] | None = None, columns: int = 6) -> Path:
    """Per neuron: its orientation curve and its spatial-frequency curve, with the fitted preferred value
    (solid line) and, where ``truth`` gives it, the true one (dashed).

    Args:
        rows (list[dict]): :class:`~mei.pipeline.analysis_tables.TuningTemplate.Neuron` rows.
        labels (list[str]): a title per neuron.
        path (Path): where to save the PNG.
        truth (list[dict | None], optional): per neuron ``{"orientation": deg, "spatial_frequency": c/px}``.
        columns (int, optional): neurons per row. Default: 6.
    """
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    n_rows = math.ceil(len(rows) / columns)
    figure, axes = plt.subplots(n_rows, 2 * columns, squeeze=False, figsize=(2 * columns * 1.25, n_rows * 1.3 + 0.3))
    for ax in axes.flat:
        ax.axis("off")
    for i, row in enumerate(rows):
        curves, known = row["curves"], (truth[i] if truth is not None else None) or {}
        left, right = axes[i // columns][2 * (i % columns)], axes[i // columns][2 * (i % columns) + 1]
        for ax in (left, right):
            ax.axis("on")
            ax.tick_params(which="both", labelsize=5, length=2)
        left.plot(curves["orientations"], curves["orientation_curve"], "k.-", lw=0.8, ms=2)
        left.axvline(row["preferred_orientation"], color="tab:red", lw=0.8)
        if "orientation" in known:
            left.axvline(known["orientation"], color="tab:blue", lw=0.8, ls="--")
        left.set_title(f"{labels[i]} {row['preferred_orientation']:.0f}°", fontsize=6)
        right.semilogx(curves["spatial_frequencies"], curves["frequency_curve"], "k.-", lw=0.8, ms=2)
        right.xaxis.set_minor_formatter(NullFormatter())
        right.set_xticks([0.03, 0.1, 0.3], ["0.03", "0.1", "0.3"])
        left.set_xticks([0, 90, 180])
        right.axvline(row["preferred_spatial_frequency"], color="tab:red", lw=0.8)
        if "spatial_frequency" in known:
            right.axvline(known["spatial_frequency"], color="tab:blue", lw=0.8, ls="--")
        right.set_title(f"{row['preferred_spatial_frequency']:.3f} c/px, PI {row['phase_invariance']:.2f}",
                        fontsize=6)
    figure.suptitle("each neuron: orientation tuning (degrees) | spatial-frequency tuning (cycles/pixel); "
                    "red: fitted preferred value, blue dashed: true value", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _figure(path: Path, caption: str) -> str:
    return f"<figure><img src='{html.escape(path.name)}'><figcaption>{html.escape(caption)}</figcaption></figure>"


def _truth(population: Any, unit: int) -> dict[str, float] | None:
    params = population.params[unit]
    if "theta" not in params:
        return None
    return {"orientation": math.degrees(params["theta"]) % 180, "spatial_frequency": 1 / params["wavelength"]}


def _orientation_error(fitted: float, true: float) -> float:
    error = abs(fitted - true) % 180
    return min(error, 180 - error)


def tuning_summary(rows: Sequence[Mapping[str, Any]], population: Any, units: Sequence[int]) -> dict[str, Any]:
    """Fitted against true tuning of the Gabor cells, and phase invariance per cell type."""
    kinds = [population.kinds[u] for u in units]
    truth = [_truth(population, u) for u in units]
    gabor = [(row, t) for row, t in zip(rows, truth, strict=True) if t is not None]
    summary: dict[str, Any] = {}
    if gabor:
        summary["tuning: median orientation error (deg), Gabor cells"] = float(np.median(
            [_orientation_error(r["preferred_orientation"], t["orientation"]) for r, t in gabor]))
        summary["tuning: median |SF error| (%), Gabor cells"] = float(np.median(
            [100 * abs(r["preferred_spatial_frequency"] / t["spatial_frequency"] - 1) for r, t in gabor]))
    for kind in ("simple", "complex"):
        values = [r["phase_invariance"] for r, k in zip(rows, kinds, strict=True) if k == kind]
        if values:
            summary[f"tuning: median phase invariance, {kind} cells"] = float(np.median(values))
    return summary


def analysis_sections(run: Any, data: Any, out: Path) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The report's MDS and tuning sections for ``run`` (none where the run has no such rows), and summary
    figures for them (the adjusted Rand index of the clusters against the true cell types, tuning errors)."""
    from . import tables

    sections: list[tuple[str, str]] = []
    summary: dict[str, Any] = {}
    index = {key["neuron_id"]: i for i, key in enumerate(data.keys)}
    labels = [f"{key['neuron_id']} {kind_label(kind)}" for key, kind in zip(data.keys, data.kinds, strict=True)]
    if getattr(run, "mds", None) is not None:
        key = {**run.mds, **run.method, **run.ensemble}
        assignments = (tables.MDS.Assignment() & key).to_dicts(order_by="neuron_id")
        if assignments and len(assignments) == len(data.keys):
            stimuli = [np.asarray(s).squeeze() for s in tables.MDS().fetch_stimuli(key).numpy()]
            clusters = [0] * len(data.keys)
            for row in assignments:
                clusters[index[row["neuron_id"]]] = int(row["cluster"])
            types = [data.population.types[u] for u in data.units]
            ari = adjusted_rand_index(clusters, types)
            run_row = (tables.MDS() & key).fetch1()
            aligned = bool((tables.MDSConfig() & key).fetch1("align"))
            gaps = [row["own_response"] - row["other_response"] for row in (tables.MDS.Stimulus() & key).to_dicts()]
            summary["MDS: adjusted Rand index vs true types"] = ari
            summary["MDS: clusters, iterations, converged"] = (f"{run_row['n_clusters']}, {run_row['iterations']}, "
                                                               f"{bool(run_row['converged'])}")
            summary["MDS: smallest own - other response"] = float(min(gaps))
            counts = [dict(Counter(t for t, c in zip(types, clusters, strict=True) if c == j))
                      for j in range(len(stimuli))]
            names = [f"{key['neuron_id']} {name}" for key, name in zip(data.keys, types, strict=True)]
            path = plot_mds(stimuli, clusters, centred(data.meis) if aligned else data.meis, names, out / "mds.png")
            where = ("shown centred; each neuron was shown it on its own receptive field, the centre of its MEI, "
                     "as the paper's centred readouts do) and its members' MEIs, moved to the centre likewise"
                     if aligned else "where every neuron sees it) and its members' MEIs")
            sections.append(("Most discriminative stimuli", _figure(
                path, "Each cluster's most discriminative stimulus (red frame; " + where + " (id, true type)."
                      f" True types per cluster: {counts}; adjusted Rand index against the "
                      f"true types {ari:.2f}. Each cluster's members respond to their own stimulus more than to "
                      f"any other cluster's, by at least {min(gaps):.2f} (mean responses over each neuron's "
                      "response to its MEI).")))
    if getattr(run, "tuning", None) is not None:
        rows = (tables.Tuning.Neuron() & run.tuning & run.ensemble).to_dicts(order_by="neuron_id")
        if rows and len(rows) == len(data.keys):
            truth = [_truth(data.population, u) for u in data.units]
            path = plot_tuning(rows, labels, out / "tuning.png", truth)
            summary.update(tuning_summary(rows, data.population, data.units))
            sections.append(("Tuning", _figure(
                path, "Per neuron: orientation tuning (left, degrees) and spatial-frequency tuning (right, "
                      "cycles/pixel) of the model, mean over grating phase; red: fitted preferred value, blue "
                      "dashed: the true value (Gabor cells); PI: phase invariance (complex cells near 1)")))
    return sections, summary


def table_sections(mei_table: Any, out: Path, mds_table: Any = None,
                   tuning_table: Any = None) -> list[tuple[str, str]]:
    """MDS and tuning sections for the MEIs of any MEI table (``mei report --mds ... --tuning ...``).

    Args:
        mei_table (MEITemplate table): the (restricted) MEI table of the report.
        out (Path): folder for the PNGs.
        mds_table (MDSTemplate table, optional): its runs on these MEIs (the first run is shown). Default: none.
        tuning_table (TuningTemplate table, optional): its rows for these MEIs' neurons. Default: none.
    """
    sections: list[tuple[str, str]] = []
    if mds_table is not None:
        runs = (mds_table & mei_table.proj()).keys(order_by=mds_table.primary_key)
        if runs:
            run = runs[0]
            assignments = (mds_table.Assignment() & run).to_dicts()
            objective = [name for name in assignments[0] if name not in run and name not in ("cluster",
                                                                                              "initial_cluster")]
            meis = {tuple(row[n] for n in objective): np.asarray(row["mei"]).squeeze()
                    for row in (mei_table & run).to_dicts()}
            shown = [row for row in assignments if tuple(row[n] for n in objective) in meis]
            stimuli = [np.asarray(s).squeeze() for s in mds_table.fetch_stimuli(run).numpy()]
            labels = [" ".join(str(row[n]) for n in objective if n.endswith("_id")) or "neuron" for row in shown]
            members = [meis[tuple(row[n] for n in objective)] for row in shown]
            aligned = bool((mds_table.mds_config_table() & run).fetch1("align"))
            path = plot_mds(stimuli, [int(row["cluster"]) for row in shown], centred(members) if aligned else members,
                            labels, out / "mds.png")
            note = " (an aligned run: stimuli and MEIs shown centred)" if aligned else ""
            sections.append(("Most discriminative stimuli", _figure(
                path, f"Each cluster's most discriminative stimulus (red frame) and its members' MEIs{note}; "
                      f"{len(runs)} run(s) on these MEIs, the first shown")))
    if tuning_table is not None:
        rows = (tuning_table.Neuron() & mei_table.proj()).to_dicts()
        if rows:
            first = rows[0]["tuning_hash"]
            rows = [row for row in rows if row["tuning_hash"] == first]
            names = [n for n in ("neuron_id", "unit_id") if n in rows[0]]
            labels = [" ".join(str(row[n]) for n in names) for row in rows]
            path = plot_tuning(rows, labels, out / "tuning.png")
            sections.append(("Tuning", _figure(
                path, "Per neuron: orientation tuning (left, degrees) and spatial-frequency tuning (right, "
                      "cycles/pixel), mean over grating phase; red: fitted preferred value; PI: phase invariance")))
    return sections
