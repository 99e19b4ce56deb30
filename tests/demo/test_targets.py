"""The demo's targets: the summary checks each one, the CLI prints goal, value and verdict of every target."""

import math

import pytest

from mei import cli
from mei.demo.report import demo_summary, held_out_fraction
from mei.demo.settings import TARGETS, DemoSettings, Target, check_targets


def card(correlation, ratio, transfer=None):
    return {"rf_correlation": correlation, "activation_ratio": ratio, "jitter_robustness": 0.9, "transfer": transfer}


KINDS = ["simple"] * 6 + ["complex"] * 3 + ["dog"]


def summary_of(correlations, ratios, truth, transfer=0.9, norms=None):
    cards = [card(c, r) for c, r in zip(correlations, ratios, strict=True)]
    single = [card(c, 5.0, transfer * 5.0) for c in correlations]  # held out 0.9x as strong as in its own member
    return demo_summary(cards, KINDS, single, truth, norms or [47.9] * len(cards), natural_norm=47.99)


def test_a_run_meeting_every_goal():
    summary = summary_of([0.97] * 10, [4.0] * 10, [6.0] * 10)
    assert summary["targets_met"] is True
    assert [t["figure"] for t in summary["targets"]] == [t.figure for t in TARGETS]
    assert all(t["met"] for t in summary["targets"])
    assert summary["median_held_out_transfer"] == pytest.approx(0.9)
    assert summary["mei_norm_over_natural_norm"] == pytest.approx(47.9 / 47.99)


@pytest.mark.parametrize("change, missed", [
    ({"correlations": [0.94] * 10}, {"median_rf_correlation"}),
    ({"correlations": [0.97] * 9 + [0.5]}, {"lowest_type_median_rf_correlation"}),  # the one dog cell
    ({"ratios": [4.0] * 9 + [2.9]}, {"fraction_3x_best_natural"}),  # 90 % of units at 3x
    ({"truth": [2.0] * 10}, {"true_fraction_3x_best_natural"}),
    ({"norms": [47.9] * 9 + [48.5]}, {"mei_norm_over_natural_norm"}),  # one MEI brighter than the images
    ({"transfer": 0.7}, {"median_held_out_transfer"}),
])
def test_each_missed_goal_is_named(change, missed):
    values = {"correlations": [0.97] * 10, "ratios": [4.0] * 10, "truth": [6.0] * 10, **change}
    summary = summary_of(**values)
    assert summary["targets_met"] is False
    assert {t["figure"] for t in summary["targets"] if not t["met"]} == missed


def test_a_missing_or_nan_figure_is_never_met():
    target = Target("x", ">=", 0.5, "a figure")
    assert target.goal == ">= 0.5" and target.met(0.5) and not target.met(0.49)
    assert not target.met(None) and not target.met(math.nan)
    assert check_targets({}, (target,)) == [{"figure": "x", "goal": ">= 0.5", "value": None, "met": False,
                                             "meaning": "a figure"}]


def test_held_out_transfer_is_relative_to_the_own_member():
    assert held_out_fraction(card(0.9, 4.0, 3.0)) == pytest.approx(0.75)
    assert held_out_fraction(card(0.9, 4.0)) is None


def test_the_printed_summary_names_every_goal_value_verdict_and_norm():
    summary = summary_of([0.97] * 10, [4.0] * 9 + [2.9], [6.0] * 10)
    text = cli._summary_text(summary, {"training": 1.0})
    assert "MISSED fraction_3x_best_natural >= 0.95: 0.900" in text
    assert "met    median_rf_correlation >= 0.95: 0.970" in text
    assert "1 target(s) missed: fraction_3x_best_natural" in text
    assert "median_activation_ratio: 4.000 (MEI norm 47.90, natural images' median norm 47.99)" in text
    assert "fraction_3x_best_natural: 0.900 (MEI norm" in text and "neurons: 10\n" in text
    quick = cli._summary_text(summary, {}, quick=True)
    assert "--quick does not enforce them" in quick


def test_the_mei_norm_does_not_exceed_the_natural_images_norm():
    """The images are standardized with the unbiased std: their norm is sqrt(h * w - 1), not sqrt(h * w)."""
    for settings in (DemoSettings(), DemoSettings.quick()):
        norm = settings.method_config()["postprocessing"]["kwargs"]["norm"]
        assert norm <= math.sqrt(settings.height * settings.width - 1)
        assert norm > 0.999 * math.sqrt(settings.height * settings.width - 1)
