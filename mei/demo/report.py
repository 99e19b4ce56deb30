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

from .analyses_report import analysis_sections, table_sections
from .page import ERROR_TRAP, KIND_COLOURS, STYLE, TABLE_SCRIPT, glossary_html, kind_label, label
from .settings import TARGETS as DEMO_TARGETS
from .settings import Target, check_targets

CARD_COLUMNS = ("activation", "best_natural", "activation_ratio", "transfer", "jitter_robustness",
                "peak_frequency", "rf_correlation")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show(ax: Any, image: np.ndarray, title: str = "", limit: float | None = None) -> Any:
    """Draw ``image`` in grey on ``[-limit, limit]`` (default: its own largest magnitude); returns the image."""
    limit = limit or float(np.abs(image).max()) or 1.0
    shown = ax.imshow(image, cmap="gray", vmin=-limit, vmax=limit)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)
    return shown


def plot_mei_grid(meis: Sequence[np.ndarray], titles: Sequence[str], path: Path,
                  rfs: Sequence[np.ndarray] | None = None, columns: int = 8) -> Path:
    """MEIs in a grid (each above its true receptive field when ``rfs`` is given); saved as PNG.

    The MEIs share one grey scale, symmetric about 0, shown by the colour bar (pixel value); each true RF is
    scaled to its own largest magnitude (its units are arbitrary).

    Args:
        meis (Sequence[np.ndarray]): images ``(h, w)``.
        titles (Sequence[str]): one title per MEI.
        path (Path): where to save.
        rfs (Sequence[np.ndarray], optional): the true receptive fields, same order. Default: none.
        columns (int, optional): neurons per row. Default: 8.
    """
    plt = _pyplot()
    per_cell = 2 if rfs is not None else 1
    columns = max(1, min(columns, len(meis)))
    rows = math.ceil(len(meis) / columns)
    height, width = np.asarray(meis[0]).shape[-2:]
    figure, axes = plt.subplots(rows * per_cell, columns, squeeze=False,
                                figsize=(columns * 1.6 + 1.0, rows * per_cell * 1.6 * height / width + 0.4 * rows))
    for ax in axes.flat:
        ax.axis("off")
    limit = max(float(np.abs(np.asarray(mei)).max()) for mei in meis) or 1.0
    shown = None
    for i, mei in enumerate(meis):
        row, column = divmod(i, columns)
        ax = axes[row * per_cell, column]
        ax.axis("on")
        shown = _show(ax, np.asarray(mei).reshape(height, width), titles[i], limit)
        if rfs is not None:
            ax.set_ylabel("MEI", fontsize=6)
            rf_ax = axes[row * per_cell + 1, column]
            rf_ax.axis("on")
            _show(rf_ax, np.asarray(rfs[i]).reshape(height, width))
            rf_ax.set_ylabel("true RF", fontsize=6)
    figure.tight_layout(rect=(0, 0, 0.92, 1))
    bar = figure.colorbar(shown, ax=list(axes.flat), fraction=0.02, pad=0.01)
    bar.set_label(f"MEI pixel value (range {-limit:.2f} to {limit:.2f})", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


SCORE_METRICS = ("rf_correlation", "activation_ratio", "transfer", "jitter_robustness")


SCORE_UNITS: dict[str, str] = {
    "rf_correlation": "correlation with the true RF", "activation_ratio": "MEI / best natural image",
    "true_activation_ratio": "MEI / best natural image (true neuron)", "transfer": "MEI / best natural image",
    "held_out_transfer": "MEI / best natural image (unseen members)",
    "jitter_robustness": "shifted / unshifted activation",
}
"""The y-axis label of each panel of :func:`plot_scores`."""
RATIO_METRICS = ("activation_ratio", "transfer", "held_out_transfer", "true_activation_ratio")


def plot_scores(cards: Sequence[Mapping[str, Any]], path: Path, groups: Sequence[str] | None = None,
                metrics: Sequence[str] = SCORE_METRICS) -> Path:
    """Per-neuron report-card values: one panel per metric, points by cell type (colours of
    :data:`mei.demo.page.KIND_COLOURS`), black bars at the medians, a dashed line at 1 for ratios."""
    plt = _pyplot()
    metrics = [name for name in metrics if any(card.get(name) is not None for card in cards)]
    groups = list(groups) if groups is not None else ["all"] * len(cards)
    names = sorted(set(groups), key=groups.index)
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for g, name in enumerate(names):
            values = [card[metric] for card, group in zip(cards, groups, strict=True)
                      if group == name and card.get(metric) is not None]
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(len(values))
            ax.plot(g + jitter, values, "o", ms=4, alpha=0.7, color=KIND_COLOURS.get(name))
            if values:
                ax.hlines(np.median(values), g - 0.3, g + 0.3, color="k")
        ax.set_xticks(range(len(names)), [kind_label(name) for name in names], fontsize=8)
        ax.set_title(label(metric), fontsize=9)
        ax.set_ylabel(SCORE_UNITS.get(metric, label(metric)), fontsize=8)
        if metric in RATIO_METRICS:
            ax.axhline(1.0, color="r", lw=0.8, ls="--")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_losses(curves: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """Training and validation loss per epoch (epochs 1, 2, ...), one line pair per model.

    The loss is the Poisson negative log-likelihood without its constant ``log(count!)`` term
    (:func:`mei.demo.training.poisson_loss`), so it can be below 0; the axis label says so.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5, 3.4))
    for name, curve in curves.items():
        epochs = range(1, len(curve["train_loss"]) + 1)
        line, = ax.plot(epochs, curve["train_loss"], "o-", ms=3, label=f"{name} train")
        ax.plot(range(1, len(curve["val_loss"]) + 1), curve["val_loss"], "o--", ms=3, color=line.get_color(),
                label=f"{name} validation")
    n_epochs = max((len(curve["train_loss"]) for curve in curves.values()), default=1)
    if n_epochs <= 20:  # one tick per epoch (a locator puts fractional ticks around a single epoch)
        ax.set_xticks(range(1, n_epochs + 1))
        ax.set_xlim(0.5, n_epochs + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("Poisson loss (without log(count!); lower is better)", fontsize=8)
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
    axes[0, 0].set_ylabel("mean power (each spectrum sums to 1)")
    if true_frequencies is not None:
        ax = axes[0, 1]
        groups = list(groups) if groups is not None else ["all"] * len(cards)
        for name in sorted(set(groups), key=groups.index):
            pairs = [(t, card["peak_frequency"])
                     for t, card, g in zip(true_frequencies, cards, groups, strict=True) if g == name and t is not None]
            if pairs:
                ax.plot(*zip(*pairs, strict=True), "o", ms=4, label=kind_label(name), color=KIND_COLOURS.get(name))
        ax.plot([0, 0.2], [0, 0.2], "k--", lw=0.8, label="MEI = truth")
        ax.set_xlabel("true preferred frequency (cycles/pixel)")
        ax.set_ylabel("MEI peak frequency (cycles/pixel)")
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


FLAGGED: dict[str, tuple[float, str]] = {
    "activation_ratio": (1.0, "below 1: the MEI does not beat the best natural image"),
    "true_activation_ratio": (1.0, "below 1: the MEI does not beat the true neuron's best natural image"),
    "held_out_transfer": (0.8, "below 0.8 (the demo's target): the MEI drives the members it never saw much less "
                               "than its own, it exploits that one model"),
}
"""Columns whose values below a bound are flagged in the tables: ``column -> (bound, why)``."""


def _cell(column: str, value: Any, flagged: Mapping[str, tuple[float, str]] = FLAGGED) -> str:
    if value is None:
        return "<td data-value=''>—</td>"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    flag = number and column in flagged and value < flagged[column][0]
    text = f"{value:.3f}" if isinstance(value, float) else kind_label(value) if column == "type" else str(value)
    attributes = f" class='flag' title='{html.escape(flagged[column][1])}'" if flag else ""
    sort_value = f" data-value='{float(value)!r}'" if number else ""
    return f"<td{attributes}{sort_value}>{html.escape(text)}{' ⚠' if flag else ''}</td>"


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], table_id: str | None = None,
               flagged: Mapping[str, tuple[float, str]] = FLAGGED) -> str:
    """An HTML table of ``rows`` (dicts) with ``columns`` (code names; the heads show :func:`mei.demo.page.label`).

    With ``table_id`` the table is sortable (click a head) and has a filter box above it. Values of the
    ``flagged`` columns below their bound (:data:`FLAGGED`) are marked. Numbers sort as numbers (``data-value``).
    """
    head = "".join(f"<th>{html.escape(label(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(c, row.get(c), flagged) for c in columns) + "</tr>" for row in rows)
    table = f"<table{_table_attributes(table_id)}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if table_id is None:
        return table
    box = (f"<div class='filter'><label>Filter rows: <input id='{table_id}-filter' type='search' "
           "placeholder='text in any column'></label> (click a column head to sort)</div>")
    return box + table


def _table_attributes(table_id: str | None) -> str:
    return f" id='{html.escape(table_id)}' class='sortable'" if table_id else ""


def targets_html(summary: Mapping[str, Any], targets: Sequence[Target]) -> str:
    """A table of the ``targets`` (:class:`mei.demo.settings.Target`) with the measured value and met or missed."""
    rows = []
    for target in targets:
        value = summary.get(target.figure)
        met = target.met(value)
        shown = f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))
        rows.append(f"<tr><td style='text-align:left'>{html.escape(label(target.figure))}</td>"
                    f"<td>{html.escape(target.goal.replace('>=', '≥').replace('<=', '≤'))}</td>"
                    f"<td>{shown}</td><td class='{'met' if met else 'missed'}'>{'met ✓' if met else 'missed ✗'}</td>"
                    f"<td style='text-align:left'>{html.escape(target.meaning)}</td></tr>")
    head = "<tr><th>target</th><th>required</th><th>measured</th><th>result</th><th>what it shows</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def write_html(path: Path, title: str, sections: Sequence[tuple[str, str]], command: str | None = None,
               terms: Sequence[str] | None = None) -> Path:
    """A self-contained page: ``sections`` are ``(heading, html)`` pairs; figures are linked by file name.

    Args:
        path (Path): the HTML file to write.
        title (str): the page's title.
        sections (Sequence[tuple[str, str]]): the page's sections.
        command (str, optional): the command that regenerates the page, shown under the title. Default: none.
        terms (Sequence[str], optional): the labels the glossary at the end defines (those it knows); default:
            every metric of :data:`mei.demo.page.GLOSSARY`.
    """
    from .page import GLOSSARY

    body = "".join(f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections)
    again = (f"<p>Regenerate this page with <code class='command'>{html.escape(command)}</code></p>"
             if command else "")
    chosen = GLOSSARY if terms is None else {t: GLOSSARY[t] for t in dict.fromkeys(terms) if t in GLOSSARY}
    glossary = f"<h2>What the numbers mean</h2>{glossary_html(chosen)}" if chosen else ""
    path.write_text(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<script>{ERROR_TRAP}</script><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
                    f"{again}{body}{glossary}<script>{TABLE_SCRIPT}</script></body></html>")
    return path


def figure_html(path: Path, caption: str) -> str:
    """A figure linking the PNG at ``path`` by its file name, with ``caption``."""
    return (f"<figure><img src='{html.escape(path.name)}' alt='{html.escape(caption[:80])}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


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


def write_report(mei_table: Any, out_dir: str | Path, card_table: Any = None, title: str = "MEI report",
                 command: str | None = None, mds_table: Any = None, tuning_table: Any = None) -> Path:
    """Report of the MEIs in ``mei_table`` (any restriction): grid, scores and report card if given.

    Args:
        mei_table (MEITemplate table): e.g. ``MEI() & "method_hash='...'"``.
        out_dir (str | Path): folder for ``report.html`` and the PNGs (created).
        card_table (ReportCardTemplate table, optional): its rows for these MEIs go in the report. Default: none.
        title (str, optional): page title. Default: ``"MEI report"``.
        command (str, optional): the command that regenerates the page (``mei report ...``), shown on it.
            Default: none.
        mds_table, tuning_table (optional): MDS and tuning tables (:mod:`mei.pipeline.analysis_tables`) whose
            rows for these MEIs get a section each. Default: none.

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
    name = next((name for name in ("neuron_id", "unit_id") if name in keys[0]), None)
    titles = [f"{label(name)} {key[name]} · score {score:.2f}" if name else f"score {score:.2f}"
              for key, score in zip(keys, scores, strict=True)]
    sections = [("MEIs", figure_html(plot_mei_grid([m.squeeze() for m in meis], titles, out / "meis.png"),
                                     "The MEIs with their scores, on one grey scale (colour bar: pixel value)"))]
    rows = [{**row, "score": s} for row, s in zip(distinguishing_rows(mei_table, keys), scores, strict=True)]
    if card_table is not None:
        cards = [(card_table & key).fetch1() if card_table & key else None for key in keys]
        present = [card for card in cards if card is not None]
        if present:
            sections.append(("Report card", figure_html(plot_scores(present, out / "scores.png"),
                                                         "Report-card metrics per MEI (bars: medians; dashed: 1)")))
            for row, card in zip(rows, cards, strict=True):
                row.update({c: card.get(c) for c in CARD_COLUMNS} if card else {})
    sections += table_sections(mei_table, out, mds_table, tuning_table)
    columns = list(dict.fromkeys(c for row in rows for c in row))
    sections.append(("Per MEI", html_table(rows, columns, table_id="per-mei")))
    return write_html(out / "report.html", title, sections, command=command, terms=[label(c) for c in columns])


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


def held_out_fraction(card: Mapping[str, Any]) -> float | None:
    """For an MEI made on one member: its activation ratio in the held-out members (mean) over that in its own."""
    if card.get("transfer") is None or not card.get("activation_ratio"):
        return None
    return float(card["transfer"] / card["activation_ratio"])


def demo_summary(cards: Sequence[Mapping[str, Any]], kinds: Sequence[str],
                 transfer_cards: Sequence[Mapping[str, Any]] = (), truth: Sequence[float] = (),
                 mei_norms: Sequence[float] = (), natural_norm: float | None = None) -> dict[str, Any]:
    """The demo's figures, and under ``"targets"`` each of :data:`mei.demo.settings.TARGETS` with its value.

    Args:
        cards (Sequence[dict]): the report cards of the ensemble's MEIs.
        kinds (Sequence[str]): the cell type of each, same order.
        transfer_cards (Sequence[dict], optional): report cards of MEIs made on one member alone.
        truth (Sequence[float], optional): the true neurons' activation ratios (:func:`true_ratios`).
        mei_norms (Sequence[float], optional): the L2 norm of each MEI.
        natural_norm (float, optional): the median L2 norm of the natural images they are compared with.
    """
    correlations = np.array([card["rf_correlation"] for card in cards])
    ratios = np.array([card["activation_ratio"] for card in cards])
    summary: dict[str, Any] = {
        "neurons": len(cards), "median_rf_correlation": float(np.median(correlations)),
        "fraction_beating_best_natural": float(np.mean(ratios >= 1.0)),
        "fraction_3x_best_natural": float(np.mean(ratios >= 3.0)),
        "median_activation_ratio": float(np.median(ratios)),
        "median_jitter_robustness": float(np.median([card["jitter_robustness"] for card in cards]))}
    by_type = {kind: float(np.median(correlations[np.array(kinds) == kind])) for kind in sorted(set(kinds))}
    for kind, value in by_type.items():
        summary[f"median_rf_correlation_{kind}"] = value
    summary["lowest_type_median_rf_correlation"] = min(by_type.values())
    held_out = [f for card in transfer_cards if (f := held_out_fraction(card)) is not None]
    if held_out:
        summary["median_held_out_transfer"] = float(np.median(held_out))
    if len(truth):
        summary["true_neurons_beating_best_natural"] = float(np.mean(np.asarray(truth) >= 1.0))
        summary["true_fraction_3x_best_natural"] = float(np.mean(np.asarray(truth) >= 3.0))
        summary["median_true_activation_ratio"] = float(np.median(truth))
    if len(mei_norms) and natural_norm:
        summary["median_mei_norm"] = float(np.median(mei_norms))
        summary["natural_image_median_norm"] = float(natural_norm)
        summary["mei_norm_over_natural_norm"] = float(np.max(mei_norms) / natural_norm)
    summary["targets"] = check_targets(summary)
    summary["targets_met"] = all(target["met"] for target in summary["targets"])
    return summary


def _demo_rows(keys: Sequence[Mapping[str, Any]], kinds: Sequence[str], cards: Sequence[Mapping[str, Any]],
               transfer_cards: Mapping[int, Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for key, kind, card in zip(keys, kinds, cards, strict=True):
        held_out = held_out_fraction(transfer_cards.get(key["neuron_id"], {}))
        rows.append({"neuron_id": key["neuron_id"], "type": kind, **{c: card[c] for c in CARD_COLUMNS},
                     "true_activation_ratio": card.get("true_activation_ratio"),
                     "member_agreement": card["transfer"], "held_out_transfer": held_out})
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
    natural_norm: float = float("nan")


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
    images = tables.training_images(run.dataset)
    truth = true_ratios(population, units, meis, images)
    natural_norm = float(images.flatten(1).norm(dim=1).median())
    return DemoData(population, keys, units, [population.kinds[u] for u in units], meis, cards, transfer_cards,
                    truth, _training_curves(tables, run), natural_norm)


def _scored_cards(data: DemoData) -> list[dict[str, Any]]:
    """The report cards with the held-out transfer and the true activation ratio of each neuron added."""
    return [{**card, "held_out_transfer": held_out_fraction(data.transfer_cards.get(key["neuron_id"], {})),
             "true_activation_ratio": ratio}
            for key, card, ratio in zip(data.keys, data.cards, data.truth, strict=True)]


def _demo_figures(data: DemoData, scored: Sequence[Mapping[str, Any]], out: Path) -> list[tuple[Path, str]]:
    """The demo's four figures, written to ``out``, with their captions."""
    filters = data.population.filters.numpy()
    rfs = [_display_rf(filters[u], kind, mei) for u, kind, mei in zip(data.units, data.kinds, data.meis, strict=True)]
    titles = [f"{k['neuron_id']} {kind_label(kind)} r={c['rf_correlation']:.2f}"
              for k, kind, c in zip(data.keys, data.kinds, data.cards, strict=True)]
    params = [data.population.params[u] for u in data.units]
    true_frequencies = [1 / p["wavelength"] if "wavelength" in p else None for p in params]
    return [
        (plot_mei_grid(data.meis, titles, out / "meis.png", rfs=rfs),
         "Each neuron's MEI (top; all MEIs on one grey scale, the colour bar gives the pixel values) above its "
         "true receptive field (bottom, scaled to its own range; complex cells: the phase of the pair closest to "
         "the MEI); titles: neuron, cell type and r = correlation with the true RF (best over phase for complex "
         "cells)"),
        (plot_scores(scored, out / "scores.png", groups=data.kinds,
                     metrics=("rf_correlation", "activation_ratio", "true_activation_ratio", "held_out_transfer",
                              "jitter_robustness")),
         "Report card per neuron, one colour per cell type (as in the spectra), black bars at the medians, the "
         "red dashed line at 1 for ratios (above it the MEI beats the best natural image). Activation ratio: MEI "
         "over the best natural image, for the model; true activation ratio: the same for the true neuron (its "
         "rate, no noise); held-out transfer: for an MEI made on the first member alone, its activation ratio in "
         "the members it never saw over that in its own (1: as well); jitter robustness: mean activation under "
         "shifts up to 2 px over the unshifted one"),
        (plot_losses(data.curves, out / "losses.png"),
         "Training curves of the ensemble members, per epoch. The loss is the Poisson negative log-likelihood "
         "without its constant log(count!) term, so it can be below 0; lower is better"),
        (plot_spectra(data.cards, out / "spectra.png", true_frequencies, data.kinds),
         "Left: the MEIs' mean radially averaged power spectrum (each spectrum sums to 1) over spatial frequency "
         "in cycles/pixel. Right: each Gabor cell's MEI peak frequency against its true preferred frequency, one "
         "colour per cell type (as in the report card); on the dashed line they agree"),
    ]


FIGURE_HEADINGS: dict[str, str] = {"meis": "MEIs and true receptive fields", "scores": "Report card by cell type",
                                   "losses": "Training curves", "spectra": "Spatial-frequency spectra"}
"""The section heading of each of the demo's figures (by file name); others get their file name."""
DEMO_COLUMNS = ("neuron_id", "type", *[c for c in CARD_COLUMNS if c != "transfer"], "true_activation_ratio",
                "member_agreement", "held_out_transfer")
"""The columns of the demo's per-neuron table."""


def _demo_sections(data: DemoData, summary: Mapping[str, Any], scored: Sequence[Mapping[str, Any]],
                   figures: Sequence[tuple[Path, str]], timings: Mapping[str, float]) -> list[tuple[str, str]]:
    """The page's sections: targets, summary, time per step, the figures, the per-neuron table."""
    summary_rows = [{"figure": label(name), "value": value} for name, value in summary.items() if name != "targets"]
    timing_rows = [{"step": step, "seconds": seconds} for step, seconds in timings.items()]
    met = "All targets are met." if summary.get("targets_met") else "Some targets are missed."
    return [("Targets", f"<p>{met}</p>" + targets_html(summary, DEMO_TARGETS)),
            ("Summary", html_table(summary_rows, ["figure", "value"])),
            ("Time per step", html_table(timing_rows, ["step", "seconds"])),
            *[(FIGURE_HEADINGS.get(path.stem, label(path.stem)), figure_html(path, caption))
              for path, caption in figures],
            ("Per neuron", "<p>Flagged ⚠: activation ratios below 1 (the MEI does not beat the best natural "
                           "image) and held-out transfers below 0.8 (the MEI exploits the one model it was made "
                           "on); hover over a flagged value for why.</p>"
             + html_table(_demo_rows(data.keys, data.kinds, scored, data.transfer_cards), DEMO_COLUMNS,
                          table_id="per-neuron"))]


def demo_report(run: Any, out_dir: str | Path, command: str = "mei demo") -> tuple[Path, dict[str, Any]]:
    """The demo's report from its tables: ``(report.html path, summary figures)``.

    Args:
        run (DemoRun): what :func:`mei.demo.pipeline.run_demo` returned.
        out_dir (str | Path): folder for the page and the PNGs (created).
        command (str, optional): the command that regenerates the page, shown on it. Default: ``"mei demo"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = fetch_demo(run)
    summary = demo_summary(data.cards, data.kinds, list(data.transfer_cards.values()), data.truth,
                           [float(np.linalg.norm(mei)) for mei in data.meis], data.natural_norm)
    scored = _scored_cards(data)
    extra, extra_summary = analysis_sections(run, data, out)  # MDS and tuning, where the run has them
    summary = {**summary, **extra_summary}
    sections = _demo_sections(data, summary, scored, _demo_figures(data, scored, out), run.timings)
    sections[-1:-1] = extra  # before the per-neuron table
    return write_html(out / "report.html", "MEI demo: a synthetic V1 population with known receptive fields",
                      sections, command=command), summary
