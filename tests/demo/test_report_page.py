"""The HTML report as a scientist reads it: human labels, a glossary of every metric, flagged ratios below 1,
targets met or missed, the regenerating command, and a table that sorts and filters, checked in a real
headless browser (a screenshot of the page, no console errors)."""

from __future__ import annotations

import re

import pytest

from mei.demo.page import GLOSSARY, KIND_COLOURS, LABELS, kind_label, label
from mei.demo.report import (
    DEMO_COLUMNS,
    DEMO_TARGETS,
    figure_html,
    html_table,
    plot_losses,
    plot_scores,
    plot_spectra,
    targets_html,
    write_html,
)
from tests.browser import assert_not_blank, browser_or_skip, dom, screenshot

KINDS = ["simple", "simple", "complex", "dog"]
ROWS = [{"neuron_id": i, "type": kind, "activation_ratio": 1.4 - 0.3 * i, "held_out_transfer": [1.2, 1.0, 0.85, 0.6][i],
         "member_agreement": 1.1, "rf_correlation": 0.9 - 0.1 * i, "score": 2.0 + (i % 2)}
        for i, kind in enumerate(KINDS)]


def cards():
    frequencies = [0.0, 0.1, 0.2, 0.3]
    return [{**row, "jitter_robustness": 0.9, "true_activation_ratio": 1.2, "peak_frequency": 0.1,
             "spectrum": {"frequencies": frequencies, "power": [0.1, 0.6, 0.2, 0.1]}} for row in ROWS]


def page(tmp_path, summary=None):
    """A page with the parts of the demo's report: targets, figures, the per-neuron table."""
    summary = summary or {"median_rf_correlation": 0.96, "fraction_3x_best_natural": 0.5}
    figures = [
        (plot_scores(cards(), tmp_path / "scores.png", groups=KINDS,
                     metrics=("rf_correlation", "activation_ratio", "held_out_transfer")), "scores"),
        (plot_losses({"seed 1": {"train_loss": [0.5, -0.1, -0.2], "val_loss": [0.4, -0.05, -0.1]}},
                     tmp_path / "losses.png"), "losses"),
        (plot_spectra(cards(), tmp_path / "spectra.png", [0.1, 0.12, 0.09, None], KINDS), "spectra"),
    ]
    sections = [("Targets", targets_html(summary, DEMO_TARGETS)),
                *[(path.stem, figure_html(path, caption)) for path, caption in figures],
                ("Per neuron", html_table(ROWS, ["neuron_id", "type", "activation_ratio", "held_out_transfer",
                                                  "member_agreement", "rf_correlation", "score"],
                                          table_id="per-neuron"))]
    return write_html(tmp_path / "report.html", "test report", sections, command="mei demo --quick")


def test_labels_are_words_and_every_metric_is_defined():
    assert kind_label("dog") == "centre-surround" and label("transfer") == "member agreement"
    assert label("median_rf_correlation_dog") == "median RF correlation, centre-surround cells"
    for name in [*DEMO_COLUMNS, "score", "mei_seed", "method_comment", "ensemble_comment"]:
        assert "_" not in label(name), name
    metrics = [c for c in DEMO_COLUMNS if c not in ("neuron_id", "type", "activation", "best_natural")]
    assert all(label(c) in GLOSSARY for c in metrics), [label(c) for c in metrics if label(c) not in GLOSSARY]
    assert "member agreement" in GLOSSARY and "Poisson loss" in GLOSSARY
    assert set(KIND_COLOURS) >= {"simple", "complex", "dog"} and len(set(KIND_COLOURS.values())) == len(KIND_COLOURS)
    assert len(set(LABELS.values())) > 20


def test_the_page_flags_ratios_below_one_and_shows_targets_and_command(tmp_path):
    text = page(tmp_path).read_text()
    assert "Regenerate this page with <code class='command'>mei demo --quick</code>" in text
    flagged = re.findall(r"<td class='flag'[^>]*>([^<]*)</td>", text)
    assert flagged == ["0.800 ⚠", "0.500 ⚠", "0.600 ⚠"]  # ratios below 1 (neurons 2, 3), transfer below 0.8 (3)
    assert "missed ✗" in text and "met ✓" in text and "centre-surround" in text
    assert "_" not in "".join(re.findall(r"<th>([^<]*)</th>", text))
    assert "<dt>member agreement</dt>" in text and "http" not in text  # nothing from the network


@pytest.mark.slow  # starts a browser four times
def test_the_page_in_a_headless_browser(tmp_path):
    browser = browser_or_skip()
    path = page(tmp_path)
    png = tmp_path / "shot.png"
    console = screenshot(browser, path.as_uri(), png, 1300, 2400)
    assert console == [], console
    assert_not_blank(png, 1300, 2400)
    html, console = dom(browser, path.as_uri())
    assert console == [] and "data-js-errors" not in html and "data-ready=\"1\"" in html
    sorted_page = dom(browser, path.as_uri() + "#sort=score:desc")[0]
    table = re.search(r'id="per-neuron".*?<tbody>(.*?)</tbody>', sorted_page, re.S).group(1)
    neurons = re.findall(r"<tr>.*?<td[^>]*>([^<]*)</td>", table)  # the neuron column of each row, in order
    assert neurons == ["1", "3", "0", "2"]  # scores 3, 3, 2, 2: highest first, ties in their order
    assert re.search(r'<th[^>]*data-order="desc"[^>]*>([^<]*)</th>', sorted_page).group(1) == "score"
    filtered, _ = dom(browser, path.as_uri() + "#filter=centre")
    assert 'data-shown="1"' in filtered and filtered.count('style="display: none;"') == 3
