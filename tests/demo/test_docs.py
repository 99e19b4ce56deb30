"""The examples in docs/demo.md run and print what the page says."""

import contextlib
import io
import json
import re
from pathlib import Path

from mei import cli

DOC = (Path(__file__).resolve().parents[2] / "docs" / "demo.md").read_text()


def test_report_card_example_prints_the_commented_values():
    block = re.findall(r"```python\n(.*?)```", DOC, re.S)[0]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(block, "docs/demo.md", "exec"), {})
    printed = output.getvalue().split()
    expected = [re.search(r"# (\S+)", line).group(1).rstrip(":,") for line in block.splitlines()
                if line.startswith("print(")]
    assert printed[:4] == expected[:4] == ["1.0", "0.54", "1.0", "2.0"]
    assert abs(float(printed[4]) - 1 / 8) < 0.01


def test_check_config_example_and_its_misspelt_twin(tmp_path, capsys, monkeypatch):
    config = json.loads(re.findall(r"```json\n(.*?)```", DOC, re.S)[0])
    monkeypatch.chdir(tmp_path)
    Path("method.json").write_text(json.dumps(config))
    config["stoper"] = config.pop("stopper")
    Path("bad.json").write_text(json.dumps(config))
    assert cli.main(["check-config", "method.json"]) == 0
    assert capsys.readouterr().out.strip() == "method.json: valid config for mei.methods.gradient_ascent"
    assert cli.main(["check-config", "bad.json"]) == 1
    assert capsys.readouterr().err.startswith(
        "bad.json: invalid config at 'method_config.stoper': unknown config key(s) ['stoper']; "
        "did you mean 'stopper'? (known keys: [")
