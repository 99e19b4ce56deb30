"""The `mei` command: exit codes and messages, without a database."""

import json
import sys
import uuid

import pytest

from mei import cli

GOOD = {
    "device": "cpu",
    "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
    "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 1.0}},
    "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": 10}},
}


def check(tmp_path, content, *extra):
    path = tmp_path / "config.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return cli.main(["check-config", str(path), *extra]), path


def test_check_config_accepts_a_good_config(tmp_path, capsys):
    code, path = check(tmp_path, GOOD)
    assert code == 0
    assert capsys.readouterr().out.strip() == f"{path}: valid config for mei.methods.gradient_ascent"


def test_check_config_accepts_a_method_entry(tmp_path, capsys):
    code, _ = check(tmp_path, {"method_fn": "mei.methods.gradient_ascent", "method_config": GOOD})
    assert code == 0


@pytest.mark.parametrize("config, key, words", [
    ({k: v for k, v in GOOD.items() if k != "stopper"}, "stopper", "missing required config key(s) ['stopper']"),
    ({**GOOD, "steps": 3}, "steps", "unknown config key(s) ['steps']"),
    ({**GOOD, "device": "gpu"}, "device", "must be 'cpu' or 'cuda'"),
    ({**GOOD, "stopper": {"path": "os.system", "kwargs": {}}}, "stopper.path", "os"),
    ({**GOOD, "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": -1}}}, "optimizer.kwargs.lr",
     "Invalid learning rate: -1"),
    ({**GOOD, "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": "0.1"}}}, "optimizer.kwargs.lr",
     "must be a number, got '0.1'"),
    ({**GOOD, "precondition": {"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": 0}}},
     "precondition.kwargs.sigma", "GaussianBlur with sigma=0 does nothing (must be > 0)"),
    ({**GOOD, "transform": {"path": "mei.transforms.Jiter", "kwargs": {"max_shift": 1}}}, "transform.path",
     "did you mean 'Jitter'?"),
    ({**GOOD, "stoper": GOOD["stopper"]}, "stoper", "did you mean 'stopper'?"),
])
def test_check_config_names_the_bad_key(tmp_path, capsys, config, key, words):
    """Keys follow one scheme: ``method_config.`` and the path down to the bad value."""
    code, path = check(tmp_path, config)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"{path}: invalid config at 'method_config.{key}': ")
    assert words in err
    assert len(err.strip().splitlines()) == 1


def test_check_config_says_a_cuda_device_is_checked_when_it_runs(tmp_path, capsys):
    code, path = check(tmp_path, {**GOOD, "device": "cuda"})
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0] == f"{path}: valid config for mei.methods.gradient_ascent"
    assert out[1].startswith("note: device 'cuda' is not checked against this machine")


def test_check_config_unreadable_files_are_usage_errors(tmp_path, capsys):
    code, path = check(tmp_path, "{not json")
    assert code == 2
    assert capsys.readouterr().err.startswith(f"mei check-config: {path} is not valid JSON: ")
    assert cli.main(["check-config", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "report", "check-config", "worker", "jobs"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([command, "--help"])
    assert caught.value.code == 0
    assert f"usage: mei {command}" in capsys.readouterr().out


def test_worker_without_a_table_says_how_to_name_one(monkeypatch, capsys):
    monkeypatch.delenv(cli.ENV_WORKER_TABLE, raising=False)
    assert cli.main(["worker"]) == 2
    assert "name the table: --table mymodule.MEI" in capsys.readouterr().err


def test_worker_batch_size_needs_a_table_with_batched_populate(monkeypatch, capsys):
    class Plain:  # a table-like object without MEITemplate's batched populate
        def populate(self, *args, **kwargs):
            raise AssertionError("must not run")

    monkeypatch.setattr(cli, "_table", lambda path: Plain())
    assert cli.main(["worker", "--table", "lab.Plain", "--batch-size", "8"]) == 2
    assert "mei worker: Plain has no batched populate" in capsys.readouterr().err
    assert cli.main(["worker", "--table", "lab.Plain", "--batch-size", "0"]) == 2
    assert "mei worker: batch_size must be a positive int, got 0" in capsys.readouterr().err


def test_tables_must_be_datajoint_tables(capsys):
    """A table path is the operator's, imported like ``python -m`` would; it never goes through the component
    allowlist (which hands out no tables), and anything that is not a table is refused."""
    assert cli.main(["report", "--table", "os.path.join"]) == 2
    assert capsys.readouterr().err.rstrip() == "mei report: 'os.path.join' is not a DataJoint table"
    assert cli.main(["worker", "--table", "mei.initial.Constant"]) == 2
    assert "is not a DataJoint table" in capsys.readouterr().err
    assert cli.main(["worker", "--table", "no_such_lab_module.MEI"]) == 2
    assert "no module named 'no_such_lab_module' in the current folder" in capsys.readouterr().err
    assert cli.main(["worker", "--table", "MEI"]) == 2
    assert "expected a dotted path like mymodule.MEI" in capsys.readouterr().err


def test_table_module_is_found_in_the_current_folder(tmp_path, monkeypatch):
    """``mei worker --table lab.MEI`` run in the lab's folder finds ``lab.py`` without PYTHONPATH."""
    name = f"lab_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("class MEI:\n    def populate(self):\n        return 'populated'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert cli._table(f"{name}.MEI").populate() == "populated"
    finally:
        sys.modules.pop(name, None)


def test_where_parses_json_objects_and_keeps_sql():
    assert cli._restrictions(['{"mei_seed": 0}', "neuron_id < 3", "[1]"]) == [{"mei_seed": 0}, "neuron_id < 3", "[1]"]


def test_version(capsys):
    import mei

    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0 and capsys.readouterr().out == f"mei {mei.__version__}\n"


def test_bad_numbers_are_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.delenv(cli.ENV_WORKER_TABLE, raising=False)
    assert cli.main(["jobs", "--table", "lab.MEI", "--clear-stale", "-5"]) == 2
    assert capsys.readouterr().err == ("mei jobs: --clear-stale must be a number of seconds >= 0 (0: no age limit), "
                                       "got -5\n")


def test_unexpected_errors_are_one_line_and_the_traceback_comes_with_debug(monkeypatch, capsys):
    def broken(path):
        raise RuntimeError("the lab module is broken")

    monkeypatch.setattr(cli, "_table", broken)
    assert cli.main(["jobs", "--table", "lab.MEI"]) == 2
    assert capsys.readouterr().err == ("mei jobs: RuntimeError: the lab module is broken (rerun with --debug for the "
                                       "traceback)\n")
    for argv in (["--debug", "jobs", "--table", "lab.MEI"], ["jobs", "--debug", "--table", "lab.MEI"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):") and "RuntimeError: the lab module is broken" in err


def test_the_command_silences_its_two_warnings_for_itself_only(tmp_path, capsys):
    import warnings

    before = list(warnings.filters)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GOOD))

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with cli._quiet():
            warnings.warn("No datajoint.json found. Using defaults", UserWarning, stacklevel=1)
            warnings.warn("XDG_RUNTIME_DIR not set", UserWarning, stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["something else"]
    assert cli.main(["check-config", str(path)]) == 0
    assert warnings.filters == before  # library users keep DataJoint's warnings
