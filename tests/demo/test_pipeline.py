"""The demo through the pipeline at a tiny size, on the session's embedded database; report and CLI on its tables."""

import dataclasses
import functools
import re
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest

from mei import cli
from mei.demo import pipeline as demo_pipeline
from mei.demo import tables
from mei.demo.pipeline import DemoSettings, run_demo
from mei.demo.report import DEMO_TARGETS, demo_report
from mei.pipeline import database as db
from tests.browser import assert_not_blank, browser_or_skip, dom, screenshot

pytestmark = pytest.mark.slow  # the demo through the whole pipeline (training, MEIs, report cards)

TINY = DemoSettings(n_neurons=3, n_train=200, n_val=40, height=16, width=20, member_seeds=(1, 2), epochs=1,
                    channels=4, steps=3, mds_steps=5, mds_clusters=2)
PREFIX = f"meitest_demo_{uuid.uuid4().hex[:8]}"  # schemas of this session's run on the shared embedded server


@pytest.fixture(scope="module")
def demo_run(embedded_server):
    """The tiny demo on the session's embedded server, in schemas of its own (dropped afterwards)."""
    root = Path(tempfile.mkdtemp(prefix="mei-demo-tests-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance = db.instance("embedded", embedded_dir=embedded_server.pgdata, store_location=root / "store",
                               safemode=False)
        run = run_demo(TINY, prefix=PREFIX, connection=instance.connection, say=lambda line: None)
    yield run
    tables.drop(PREFIX, connection=instance.connection)
    instance.connection.close()
    shutil.rmtree(root, ignore_errors=True)


def test_every_table_has_its_rows(demo_run):
    assert len(tables.TrainedModel()) == 2
    assert len(tables.TrainedEnsembleModel()) == 2 and len(tables.TrainedEnsembleModel.Member()) == 3
    assert len(tables.Objective()) == 3
    assert len(tables.MEI()) == 6 and len(tables.ReportCard()) == 6
    assert set(tables.MEI().to_arrays("steps")) == {3}
    assert tables.MEI().fetch_mei({**demo_run.ensemble, "neuron_id": 0}).shape == (1, 1, 16, 20)


def test_report_cards_know_the_truth_and_the_held_out_member(demo_run):
    both = (tables.ReportCard() & demo_run.ensemble).to_dicts(order_by="neuron_id")
    single = (tables.ReportCard() & demo_run.single).to_dicts(order_by="neuron_id")
    assert all(-1 <= card["rf_correlation"] <= 1 for card in both)
    assert single[2]["rf_correlation"] >= 0  # the complex cell: best over phase, never negative
    assert [len(card["transfer_ratios"]) for card in both] == [2, 2, 2]  # the ensemble's two members
    assert [len(card["transfer_ratios"]) for card in single] == [1, 1, 1]  # the held-out member
    assert all(card["activation_ratio"] == pytest.approx(card["activation"] / card["best_natural"]) for card in both)


def test_a_second_run_reuses_the_rows(demo_run):
    again = run_demo(TINY, prefix=PREFIX, connection=tables.MEI().connection, say=lambda line: None)
    assert again.ensemble == demo_run.ensemble and again.method == demo_run.method
    assert len(tables.MEI()) == 6 and len(tables.TrainedModel()) == 2


def test_mei_demo_exits_1_on_a_missed_target_and_0_with_quick(demo_run, tmp_path, monkeypatch, capsys):
    """``mei demo`` end to end through the command's entry, at the tiny size on this module's schemas: its rows
    are reused (nothing is trained again), and the tiny run misses the full demo's targets."""
    connection = tables.MEI().connection
    monkeypatch.setattr(db, "connect", lambda **kwargs: connection)  # the command opens the default connection
    tiny = functools.partial(DemoSettings, **dataclasses.asdict(TINY))
    tiny.quick = tiny  # --quick: the same tiny sizes
    monkeypatch.setattr(demo_pipeline, "DemoSettings", tiny)
    for extra, code in (([], 1), (["--quick"], 0)):
        out = tmp_path / (extra[0][2:] if extra else "full")
        assert cli.main(["demo", "--schema", PREFIX, "--out", str(out), *extra]) == code, extra
        printed = capsys.readouterr().out
        assert re.search(r"\n\d+ target\(s\) missed: ", printed), printed
        assert ("--quick does not enforce them" in printed) == bool(extra)
        assert f"report: {(out / 'report.html').resolve()}" in printed and (out / "report.html").is_file()
    assert len(tables.MEI()) == 6 and len(tables.TrainedModel()) == 2  # the rows were reused, none added


def test_demo_report_writes_the_page_and_figures(demo_run, tmp_path):
    path, summary = demo_report(demo_run, tmp_path)
    assert path == tmp_path / "report.html"
    assert {p.name for p in tmp_path.glob("*.png")} == {"meis.png", "scores.png", "losses.png", "spectra.png",
                                                         "mds.png", "tuning.png"}
    assert -1 <= summary["MDS: adjusted Rand index vs true types"] <= 1
    assert "Most discriminative stimuli" in path.read_text() and "Tuning" in path.read_text()
    assert summary["neurons"] == 3 and 0 <= summary["fraction_beating_best_natural"] <= 1
    assert "median_held_out_transfer" in summary and "Per neuron" in path.read_text()
    assert 0 <= summary["true_neurons_beating_best_natural"] <= 1 and summary["median_true_activation_ratio"] > 0


def test_the_demo_report_reads_without_the_code_in_a_headless_browser(demo_run, tmp_path):
    path, summary = demo_report(demo_run, tmp_path, command="mei demo --quick")
    text = path.read_text()
    assert re.findall(r"<h2>([^<]*)</h2>", text) == [
        "Targets", "Summary", "Time per step", "MEIs and true receptive fields", "Report card by cell type",
        "Training curves", "Spatial-frequency spectra", "Most discriminative stimuli", "Tuning", "Per neuron",
        "What the numbers mean"]
    assert "Regenerate this page with <code class='command'>mei demo --quick</code>" in text
    words = re.findall(r"<th>([^<]*)</th>", text) + re.findall(r"<td[^>]*>([A-Za-z_ ]+)</td>", text)
    assert not [word for word in words if "_" in word]  # no snake_case in a head or a cell
    assert text.count("met ✓") + text.count("missed ✗") == len(DEMO_TARGETS) and "<dt>member agreement</dt>" in text
    browser = browser_or_skip()
    png = tmp_path / "shot.png"
    assert screenshot(browser, path.as_uri(), png, 1300, 3000) == []  # no console message at all
    assert_not_blank(png, 1300, 3000)
    page, console = dom(browser, path.as_uri() + "#sort=RF%20correlation:desc")
    assert console == [] and 'data-ready="1"' in page and "data-js-errors" not in page
    head, body = re.search(r'id="per-neuron".*?<thead>(.*?)</thead><tbody>(.*?)</tbody>', page, re.S).groups()
    column = re.findall(r"<th[^>]*>([^<]*)</th>", head).index("RF correlation")
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]
    correlations = [float(row[column].split()[0]) for row in rows]
    assert len(correlations) == 3 and correlations == sorted(correlations, reverse=True), correlations


def test_demo_report_fetches_each_table_once(demo_run, tmp_path, monkeypatch):
    """A fixed number of queries for any number of neurons: no single-row fetch per neuron (the report made
    5 + 3N queries before, 14 for these 3 neurons: an objective, an MEI and a report card per neuron)."""
    connection = tables.MEI().connection
    queries = []
    query = connection.query

    def counting_query(sql, *args, **kwargs):
        queries.append(sql)
        return query(sql, *args, **kwargs)

    monkeypatch.setattr(connection, "query", counting_query)
    path, summary = demo_report(demo_run, tmp_path)
    monkeypatch.undo()
    assert summary["neurons"] == 3 and path.is_file()
    # dataset (twice: population, images), count, MEIs joined, held out, curves; MDS assignments, stimuli, run,
    # its config (aligned or not) and its stimulus rows; tuning rows
    assert len(queries) == 12, queries
    assert not any('"neuron_id"=' in sql.replace(" ", "") for sql in queries), queries
    assert sum('"__m_e_i"' in sql for sql in queries) == 2  # the count and the one joined fetch


def test_cli_report_and_worker_on_the_demo_tables(demo_run, tmp_path, capsys):
    where = ["--where", f'{{"ensemble_hash": "{demo_run.ensemble["ensemble_hash"]}"}}']
    code = cli.main(["report", "--table", "mei.demo.tables.MEI", *where, "--card", "mei.demo.tables.ReportCard",
                     "--out", str(tmp_path)])
    assert code == 0 and capsys.readouterr().out.strip() == f"report: {tmp_path / 'report.html'}"
    assert (tmp_path / "report.html").read_text().count("<tr>") == 1 + 3  # header + one row per MEI
    page = (tmp_path / "report.html").read_text()
    assert "<code class='command'>mei report --table mei.demo.tables.MEI --where" in page  # how to regenerate it
    assert "<h2>MEIs</h2>" in page and "<th>neuron</th>" in page and "<dt>member agreement</dt>" in page
    (tables.ReportCard() & "neuron_id = 1").delete_quick()
    (tables.MEI() & "neuron_id = 1").delete_quick()
    assert len(tables.MEI()) == 4
    for table in ("MEI", "ReportCard"):
        assert cli.main(["worker", "--table", f"mei.demo.tables.{table}"]) == 0
        assert capsys.readouterr().out.strip().endswith("mei worker: made 2 key(s), 0 failed")
    assert len(tables.MEI()) == 6 and len(tables.ReportCard()) == 6


def test_mds_and_tuning_tables_have_their_rows(demo_run):
    assert demo_run.mds is not None and demo_run.tuning is not None
    runs = (tables.MDS() & demo_run.mds).to_dicts()
    assert len(runs) == 2  # one clustering run per ensemble (one method, one seed)
    for run in runs:
        key = {name: run[name] for name in tables.MDS().primary_key}
        stimuli = tables.MDS().fetch_stimuli(key)
        assert stimuli.shape == (run["n_clusters"], 1, 16, 20)
        assert len(tables.MDS.Stimulus() & key) == run["n_clusters"]
        assert len(tables.MDS.Assignment() & key) == 3 and len(tables.MDS.Iteration() & key) == run["iterations"]
        members = (tables.MDS.Stimulus() & key).to_arrays("n_members")
        assert sum(int(m) for m in members) == 3
    neurons = (tables.Tuning.Neuron() & demo_run.tuning).to_dicts()
    assert len(tables.Tuning() & demo_run.tuning) == 2 and len(neurons) == 6
    assert all(0 <= n["preferred_orientation"] < 180 and n["preferred_spatial_frequency"] > 0 for n in neurons)
    assert all(n["surround_suppression"] is not None and len(n["curves"]["size_curve"]) == 8 for n in neurons)


def test_mei_report_shows_mds_and_tuning_tables(demo_run, tmp_path, capsys):
    where = ["--where", f'{{"ensemble_hash": "{demo_run.ensemble["ensemble_hash"]}"}}']
    code = cli.main(["report", "--table", "mei.demo.tables.MEI", *where, "--mds", "mei.demo.tables.MDS",
                     "--tuning", "mei.demo.tables.Tuning", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    text = (tmp_path / "report.html").read_text()
    assert "<h2>Most discriminative stimuli</h2>" in text and "<h2>Tuning</h2>" in text
    assert (tmp_path / "mds.png").is_file() and (tmp_path / "tuning.png").is_file()
