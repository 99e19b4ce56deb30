"""Reports: an HTML page with PNG figures for any MEI table restriction, and the demo's report on top.

:func:`write_report` works on any :class:`mei.main.MEITemplate` table (``mei report`` calls it): the MEI
grid, the scores, and the report card where a report-card table is given. :func:`demo_report` adds what only
the demo knows: the true receptive fields beside the MEIs, the training curves, and the summary figures
against the targets.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CARD_COLUMNS = ("activation", "best_natural", "activation_ratio", "transfer", "jitter_robustness",
                "peak_frequency", "rf_correlation")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show(ax: Any, image: np.ndarray, title: str = "") -> None:
    limit = float(np.abs(image).max()) or 1.0
    ax.imshow(image, cmap="gray", vmin=-limit, vmax=limit)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def plot_mei_grid(meis: Sequence[np.ndarray], titles: Sequence[str], path: Path,
                  rfs: Sequence[np.ndarray] | None = None, columns: int = 8) -> Path:
    """MEIs in a grid (each above its true receptive field when ``rfs`` is given); saved as PNG.

    Args:
        meis (Sequence[np.ndarray]): images ``(h, w)``.
        titles (Sequence[str]): one title per MEI.
        path (Path): where to save.
        rfs (Sequence[np.ndarray], optional): the true receptive fields, same order. Default: none.
        columns (int, optional): neurons per row. Default: 8.
    """
    plt = _pyplot()
    per_cell = 2 if rfs is not None else 1
    rows = math.ceil(len(meis) / columns)
    height, width = np.asarray(meis[0]).shape[-2:]
    figure, axes = plt.subplots(rows * per_cell, columns, squeeze=False,
                                figsize=(columns * 1.6, rows * per_cell * 1.6 * height / width + 0.4 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for i, mei in enumerate(meis):
        row, column = divmod(i, columns)
        ax = axes[row * per_cell, column]
        ax.axis("on")
        _show(ax, np.asarray(mei).reshape(height, width), titles[i])
        if rfs is not None:
            ax.set_ylabel("MEI", fontsize=6)
            rf_ax = axes[row * per_cell + 1, column]
            rf_ax.axis("on")
            _show(rf_ax, np.asarray(rfs[i]).reshape(height, width))
            rf_ax.set_ylabel("true RF", fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


SCORE_METRICS = ("rf_correlation", "activation_ratio", "transfer", "jitter_robustness")


def plot_scores(cards: Sequence[Mapping[str, Any]], path: Path, groups: Sequence[str] | None = None,
                metrics: Sequence[str] = SCORE_METRICS) -> Path:
    """Per-neuron report-card values (one panel per metric, points grouped by cell type if given)."""
    plt = _pyplot()
    metrics = [name for name in metrics if any(card.get(name) is not None for card in cards)]
    groups = list(groups) if groups is not None else ["all"] * len(cards)
    names = sorted(set(groups), key=groups.index)
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for g, name in enumerate(names):
            values = [card[metric] for card, group in zip(cards, groups, strict=True)
                      if group == name and card.get(metric) is not None]
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(len(values))
            ax.plot(g + jitter, values, "o", ms=4, alpha=0.7)
            if values:
                ax.hlines(np.median(values), g - 0.3, g + 0.3, color="k")
        ax.set_xticks(range(len(names)), names)
        ax.set_title(metric.replace("_", " "), fontsize=9)
        if metric in ("activation_ratio", "transfer", "held_out_transfer", "true_activation_ratio"):
            ax.axhline(1.0, color="r", lw=0.8, ls="--")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_losses(curves: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """Training and validation loss per epoch, one line pair per model."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5, 3.4))
    for name, curve in curves.items():
        line, = ax.plot(curve["train_loss"], label=f"{name} train")
        ax.plot(curve["val_loss"], ls="--", color=line.get_color(), label=f"{name} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Poisson loss")
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_spectra(cards: Sequence[Mapping[str, Any]], path: Path,
                 true_frequencies: Sequence[float | None] | None = None, groups: Sequence[str] | None = None) -> Path:
    """Mean radial power spectrum of the MEIs; with known preferred frequencies, MEI peak vs truth."""
    plt = _pyplot()
    panels = 2 if true_frequencies is not None else 1
    figure, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.2), squeeze=False)
    frequencies = np.asarray(cards[0]["spectrum"]["frequencies"])
    power = np.mean([card["spectrum"]["power"] for card in cards], axis=0)
    axes[0, 0].plot(frequencies, power)
    axes[0, 0].set_xlabel("spatial frequency (cycles/pixel)")
    axes[0, 0].set_ylabel("mean power (normalized)")
    if true_frequencies is not None:
        ax = axes[0, 1]
        groups = list(groups) if groups is not None else ["all"] * len(cards)
        for name in sorted(set(groups)):
            pairs = [(t, card["peak_frequency"])
                     for t, card, g in zip(true_frequencies, cards, groups, strict=True) if g == name and t is not None]
            if pairs:
                ax.plot(*zip(*pairs, strict=True), "o", ms=4, label=name)
        ax.plot([0, 0.2], [0, 0.2], "k--", lw=0.8)
        ax.set_xlabel("true preferred frequency")
        ax.set_ylabel("MEI peak frequency")
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value)) if value is not None else "—"


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """An HTML table of ``rows`` (dicts) with ``columns``."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """A self-contained page: ``sections`` are ``(heading, html)`` pairs; figures are linked by file name."""
    style = ("body{font-family:sans-serif;max-width:1300px;margin:auto}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}")
    body = "".join(f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections)
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return path


def figure_html(path: Path, caption: str) -> str:
    return f"<figure><img src='{html.escape(path.name)}'><figcaption>{html.escape(caption)}</figcaption></figure>"


UPSTREAM_TABLES = ("method_table", "trained_model_table", "objective_table", "selector_table", "seed_table")
"""The class attributes of an MEI table that name the upstream tables whose ``*_comment`` columns describe a row."""


def row_descriptions(mei_table: Any, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per key, the ``*_comment`` attributes of its upstream rows (method, ensemble or model, objective, seed):
    one query per upstream table, whatever the number of keys."""
    described: list[dict[str, Any]] = [{} for _ in keys]
    for attribute in UPSTREAM_TABLES:
        upstream = getattr(mei_table, attribute, None)
        if upstream is None:
            continue
        table = upstream() if isinstance(upstream, type) else upstream
        names = [name for name in table.heading.secondary_attributes if name.endswith("_comment")]
        primary = list(table.primary_key)
        if not names or not all(name in keys[0] for name in primary):
            continue
        found = {tuple(row[k] for k in primary): row
                 for row in (table & [{k: key[k] for k in primary} for key in keys]).proj(*names).to_dicts()}
        for description, key in zip(described, keys, strict=True):
            row = found.get(tuple(key[k] for k in primary), {})
            description.update({name: row.get(name) for name in names})
    return described


def distinguishing_rows(mei_table: Any, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What tells the MEIs of ``keys`` apart, for a table a person reads: the key without its ``*_hash``
    attributes, the comments of the upstream rows (:func:`row_descriptions`) and, where rows still look the
    same (no comments, or equal ones), the first 8 characters of the hashes that differ."""
    rows = [{**{k: v for k, v in key.items() if not k.endswith("_hash")}, **described}
            for key, described in zip(keys, row_descriptions(mei_table, keys), strict=True)]
    seen = [tuple(str(v) for v in row.values()) for row in rows]
    if len(set(seen)) < len(seen):
        hashes = [k for k in keys[0] if k.endswith("_hash") and len({str(key[k]) for key in keys}) > 1]
        for row, key in zip(rows, keys, strict=True):
            row.update({k: str(key[k])[:8] for k in hashes})
    return rows


def write_report(mei_table: Any, out_dir: str | Path, card_table: Any = None, title: str = "MEI report") -> Path:
    """Report of the MEIs in ``mei_table`` (any restriction): grid, scores and report card if given.

    Args:
        mei_table (MEITemplate table): e.g. ``MEI() & "method_hash='...'"``.
        out_dir (str | Path): folder for ``report.html`` and the PNGs (created).
        card_table (ReportCardTemplate table, optional): its rows for these MEIs go in the report. Default: none.
        title (str, optional): page title. Default: ``"MEI report"``.

    Returns:
        Path: the HTML file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = mei_table.keys(order_by=mei_table.primary_key)
    if not keys:
        raise ValueError("the restriction selects no MEIs")
    meis = [np.asarray((mei_table & key).fetch1("mei")) for key in keys]
    scores = [float((mei_table & key).fetch1("score")) for key in keys]
    label = next((name for name in ("neuron_id", "unit_id") if name in keys[0]), None)
    titles = [f"{label}={key[label]} · {score:.2f}" if label else f"{score:.2f}"
              for key, score in zip(keys, scores, strict=True)]
    sections = [("MEIs", figure_html(plot_mei_grid([m.squeeze() for m in meis], titles, out / "meis.png"),
                                     "MEIs with their scores"))]
    rows = [{**row, "score": s} for row, s in zip(distinguishing_rows(mei_table, keys), scores, strict=True)]
    if card_table is not None:
        cards = [(card_table & key).fetch1() if card_table & key else None for key in keys]
        present = [card for card in cards if card is not None]
        if present:
            sections.append(("Report card", figure_html(plot_scores(present, out / "scores.png"), "per-MEI metrics")))
            for row, card in zip(rows, cards, strict=True):
                row.update({c: card.get(c) for c in CARD_COLUMNS} if card else {})
    columns = list(dict.fromkeys(c for row in rows for c in row))
    sections.append(("Per MEI", html_table(rows, columns)))
    return write_html(out / "report.html", title, sections)


# ------------------------------------------------------------------------------------ the demo's report


def _display_rf(filters: np.ndarray, kind: str, mei: np.ndarray) -> np.ndarray:
    """The true RF to show beside an MEI; for a complex cell, the phase of its pair closest to the MEI."""
    if kind != "complex":
        return filters[0]
    basis = filters[:2].reshape(2, -1)
    weights = np.linalg.lstsq(basis.T, mei.reshape(-1) - mei.mean(), rcond=None)[0]
    return (weights @ basis).reshape(filters.shape[1:])


def true_ratios(population: Any, units: Sequence[int], meis: Sequence[np.ndarray], images: Any) -> list[float]:
    """For each MEI, the true neuron's rate over its rate for its best natural image (the model left out)."""
    import torch

    natural = population.rates(images).max(dim=0).values
    rates = population.rates(torch.as_tensor(np.stack(meis), dtype=torch.float32)[:, None])
    return [float(rates[i, u] / natural[u]) for i, u in enumerate(units)]


def demo_summary(cards: Sequence[Mapping[str, Any]], kinds: Sequence[str],
                 transfer_cards: Sequence[Mapping[str, Any]] = (), truth: Sequence[float] = ()) -> dict[str, Any]:
    """The demo's figures against its targets (median RF correlation >= 0.9; ratio >= 1 for >= 95 %)."""
    correlations = np.array([card["rf_correlation"] for card in cards])
    ratios = np.array([card["activation_ratio"] for card in cards])
    summary = {"neurons": len(cards), "median_rf_correlation": float(np.median(correlations)),
               "fraction_beating_best_natural": float(np.mean(ratios >= 1.0)),
               "median_activation_ratio": float(np.median(ratios)),
               "median_jitter_robustness": float(np.median([card["jitter_robustness"] for card in cards]))}
    for kind in sorted(set(kinds)):
        summary[f"median_rf_correlation_{kind}"] = float(np.median(correlations[np.array(kinds) == kind]))
    held_out = [card["transfer"] for card in transfer_cards if card.get("transfer") is not None]
    if held_out:
        summary["median_held_out_transfer"] = float(np.median(held_out))
    if len(truth):
        summary["true_neurons_beating_best_natural"] = float(np.mean(np.asarray(truth) >= 1.0))
        summary["median_true_activation_ratio"] = float(np.median(truth))
    summary["targets_met"] = bool(summary["median_rf_correlation"] >= 0.9
                                  and summary["fraction_beating_best_natural"] >= 0.95)
    return summary


def _demo_rows(keys: Sequence[Mapping[str, Any]], kinds: Sequence[str], cards: Sequence[Mapping[str, Any]],
               transfer_cards: Mapping[int, Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for key, kind, card in zip(keys, kinds, cards, strict=True):
        held_out = transfer_cards.get(key["neuron_id"], {}).get("transfer")
        rows.append({"neuron": key["neuron_id"], "type": kind, **{c: card[c] for c in CARD_COLUMNS},
                     "true activation ratio": card.get("true_activation_ratio"),
                     "member agreement": card["transfer"], "held-out transfer": held_out})
        rows[-1].pop("transfer")
    return rows


@dataclasses.dataclass
class DemoData:
    """What the demo's report shows, fetched from its tables once (every list in neuron order)."""

    population: Any
    keys: list[dict[str, Any]]
    units: list[int]
    kinds: list[str]
    meis: list[np.ndarray]
    cards: list[dict[str, Any]]
    transfer_cards: dict[int, dict[str, Any]]
    truth: list[float]
    curves: dict[str, Any]


def _fetch_neurons(tables: Any, run: Any) -> tuple[list[dict[str, Any]], list[int], list[np.ndarray],
                                                   list[dict[str, Any]]]:
    """Keys, output units, MEIs and report cards of the run's MEIs in one query (ordered by neuron).

    ValueError when an MEI has no report card (or no objective row) yet.
    """
    meis_table = tables.MEI() & run.method & run.ensemble
    card_table = tables.ReportCard()
    joined = meis_table.proj("mei") * tables.Objective().proj("output_unit") * card_table
    rows = joined.to_dicts(order_by="neuron_id")
    if len(rows) != len(meis_table):
        raise ValueError(f"{len(meis_table)} MEIs of the run but {len(rows)} with a report card: populate the "
                         "report card first")
    key_names, card_names = meis_table.primary_key, card_table.heading.names
    keys = [{name: row[name] for name in key_names} for row in rows]
    cards = [{name: row[name] for name in card_names} for row in rows]
    return keys, [int(row["output_unit"]) for row in rows], [np.asarray(row["mei"]).squeeze() for row in rows], cards


def _training_curves(tables: Any, run: Any) -> dict[str, Any]:
    """``{"seed N": {"train_loss": [...], "val_loss": [...]}}`` of the ensemble's members, by seed."""
    members = tables.TrainedModel() & (tables.TrainedEnsembleModel.Member() & run.ensemble).proj()
    return {f"seed {row['seed']}": row["output"] for row in members.to_dicts(order_by="seed")}


def fetch_demo(run: Any) -> DemoData:
    """Everything :func:`demo_report` shows, from the demo's tables (a fixed number of queries, any N)."""
    from . import tables

    population = tables.population_of(run.dataset)
    keys, units, meis, cards = _fetch_neurons(tables, run)
    transfer_cards = {}
    if run.single is not None:
        transfer_cards = {card["neuron_id"]: card for card in
                          (tables.ReportCard() & run.method & run.single).to_dicts()}
    truth = true_ratios(population, units, meis, tables.training_images(run.dataset))
    return DemoData(population, keys, units, [population.kinds[u] for u in units], meis, cards, transfer_cards,
                    truth, _training_curves(tables, run))


def _scored_cards(data: DemoData) -> list[dict[str, Any]]:
    """The report cards with the held-out transfer and the true activation ratio of each neuron added."""
    return [{**card, "held_out_transfer": data.transfer_cards.get(key["neuron_id"], {}).get("transfer"),
             "true_activation_ratio": ratio}
            for key, card, ratio in zip(data.keys, data.cards, data.truth, strict=True)]


def _demo_figures(data: DemoData, scored: Sequence[Mapping[str, Any]], out: Path) -> list[tuple[Path, str]]:
    """The demo's four figures, written to ``out``, with their captions."""
    filters = data.population.filters.numpy()
    rfs = [_display_rf(filters[u], kind, mei) for u, kind, mei in zip(data.units, data.kinds, data.meis, strict=True)]
    titles = [f"{k['neuron_id']} {kind} r={c['rf_correlation']:.2f}"
              for k, kind, c in zip(data.keys, data.kinds, data.cards, strict=True)]
    params = [data.population.params[u] for u in data.units]
    true_frequencies = [1 / p["wavelength"] if "wavelength" in p else None for p in params]
    return [
        (plot_mei_grid(data.meis, titles, out / "meis.png", rfs=rfs),
         "Each neuron's MEI (top) above its true receptive field (bottom; complex cells: the phase of the pair "
         "closest to the MEI); r = correlation with the true RF, best over phase for complex cells"),
        (plot_scores(scored, out / "scores.png", groups=data.kinds,
                     metrics=("rf_correlation", "activation_ratio", "true_activation_ratio", "held_out_transfer",
                              "jitter_robustness")),
         "Report card per neuron and cell type (bars: medians). Activation ratio: MEI over the best natural image, "
         "for the model; true activation ratio: the same for the true neuron (its rate, no noise); "
         "held-out transfer: the same ratio for the two members an MEI made on the first member alone never saw; "
         "jitter robustness: mean activation under shifts up to 2 px over the unshifted activation"),
        (plot_losses(data.curves, out / "losses.png"), "Training curves of the ensemble members"),
        (plot_spectra(data.cards, out / "spectra.png", true_frequencies, data.kinds),
         "MEI spatial-frequency spectra; peak frequency against the Gabor cells' true frequency"),
    ]


def _demo_sections(data: DemoData, summary: Mapping[str, Any], scored: Sequence[Mapping[str, Any]],
                   figures: Sequence[tuple[Path, str]], timings: Mapping[str, float]) -> list[tuple[str, str]]:
    """The page's sections: summary, time per step, the figures, the per-neuron table."""
    summary_rows = [{"figure": name, "value": value} for name, value in summary.items()]
    timing_rows = [{"step": step, "seconds": seconds} for step, seconds in timings.items()]
    return [("Summary", html_table(summary_rows, ["figure", "value"])),
            ("Time per step", html_table(timing_rows, ["step", "seconds"])),
            *[(path.stem.capitalize(), figure_html(path, caption)) for path, caption in figures],
            ("Per neuron", html_table(_demo_rows(data.keys, data.kinds, scored, data.transfer_cards),
                                      ["neuron", "type", *[c for c in CARD_COLUMNS if c != "transfer"],
                                       "true activation ratio", "member agreement", "held-out transfer"]))]


def demo_report(run: Any, out_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """The demo's report from its tables: ``(report.html path, summary figures)``.

    Args:
        run (DemoRun): what :func:`mei.demo.pipeline.run_demo` returned.
        out_dir (str | Path): folder for the page and the PNGs (created).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = fetch_demo(run)
    summary = demo_summary(data.cards, data.kinds, list(data.transfer_cards.values()), data.truth)
    scored = _scored_cards(data)
    sections = _demo_sections(data, summary, scored, _demo_figures(data, scored, out), run.timings)
    return write_html(out / "report.html", "MEI demo: a synthetic V1 population with known receptive fields",
                      sections), summary
