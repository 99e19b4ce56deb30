"""The `mei` command: exit codes and messages, without a database."""

import json

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
    ({**GOOD, "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": -1}}}, "optimizer.kwargs",
     "Invalid learning rate: -1"),
])
def test_check_config_names_the_bad_key(tmp_path, capsys, config, key, words):
    code, path = check(tmp_path, config)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"{path}: invalid config at '{key}': ")
    assert words in err


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


def test_tables_resolve_through_the_allowlist(capsys):
    assert cli.main(["report", "--table", "os.path.join"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mei report: cannot use table 'os.path.join': ") and "is outside the allowed modules" in err
    assert err.rstrip().endswith("; or pass --allow os")
    assert cli.main(["worker", "--table", "mei.initial.Constant"]) == 2
    assert "is not a DataJoint table" in capsys.readouterr().err


def test_where_parses_json_objects_and_keeps_sql():
    assert cli._restrictions(['{"mei_seed": 0}', "neuron_id < 3", "[1]"]) == [{"mei_seed": 0}, "neuron_id < 3", "[1]"]
