"""The litevit command and the installed layout."""

import importlib.metadata
import json
import subprocess
import sys

from litevit.cli import main


def test_info_prints_paper_comparison_for_named_models(capsys):
    assert main(["info", "mobile_former_26m", "lvt"]) == 0
    out = capsys.readouterr().out
    assert "mobile_former_26m" in out and "lvt" in out and "paper GMACs" in out
    assert "fvcore convention" in out


def test_info_json_and_custom_size(capsys):
    assert main(["info", "mobile_former_52m", "--img-size", "256", "256", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["input"] == "256x256" and row["paper_gmacs"] is None and row["gmacs"] > 0


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    for argv, fragment in (
        (["info", "no_such_model"], "unknown model 'no_such_model'"),
        (["info", "lvt", "--img-size", "225", "224"], "multiples of 32; got 225x224"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "litevit.cli", *argv], capture_output=True, text=True, cwd=tmp_path
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in proc.stderr


def test_installed_files_live_under_litevit_only():
    # The repository root shows export/, runtime/, plugins/, calibration/; installed, they must be
    # litevit.export etc., never top-level modules that would shadow other packages.
    tops = {str(f).split("/")[0] for f in importlib.metadata.files("litevit") or []}
    assert not tops & {"export", "runtime", "serve", "plugins", "calibration", "tests"}
    import litevit.calibration
    import litevit.export
    import litevit.plugins
    import litevit.runtime

    for module in (litevit.export, litevit.runtime, litevit.plugins, litevit.calibration):
        assert module.__doc__ and len(module.__doc__) > 100
