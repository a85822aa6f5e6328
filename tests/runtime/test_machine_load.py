"""The machine's load around a benchmark: /proc parsers on recorded lines, a snapshot over a fake
/proc whose files change during the sampling window, the busy warning, and `litevit bench`
recording both snapshots and refusing too few iterations. Torch-free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from onnx import TensorProto, helper, save

from litevit.cli import main
from litevit.errors import LitevitError
from litevit.runtime import machine_load
from litevit.runtime.bench import _check_iterations_done, run_benchmark
from litevit.runtime.machine_load import (
    load_record,
    parse_cpu_times,
    parse_loadavg,
    parse_process_stat,
    snapshot,
)
from litevit.runtime.stats import samples_needed

# Recorded on the 2-core CI machine (Linux 6.x, a VM: the steal column is non-zero) while two
# other helpers' test suites ran.
LOADAVG = "9.52 8.76 7.22 8/169 2976\n"
STAT = "cpu  396817 4865 60835 34574 906 0 418 1620 0 0\ncpu0 198000 2400 30400 17300 450 0 209 810 0 0\n"
STAT_LATER = "cpu  396917 4865 60895 34594 906 0 418 1640 0 0\n"  # +200 ticks: 20 idle, 20 steal
PYTHON = (
    "1468 (python) R 1466 1466 4217 0 -1 4194304 1896597 36 12 0 5453 671 0 0 20 0 4 0 234128 "
    "1129324544 120075 18446744073709551615 94714171207680 94714171208021 140733175656432 0 0 0 0 "
    "16781312 134218986 0 0 0 17 0 0 0 0 0 0 94714171219376 94714171219992 94714193600512 "
    "140733175658989 140733175659099 140733175659099 140733175660499 0\n"
)
# A kernel that is old or not virtualised: four columns, no steal.
STAT_OLD_KERNEL = "cpu  1000 0 500 8500\n"


def test_parsers_read_recorded_lines():
    assert parse_loadavg(LOADAVG) == {"1m": 9.52, "5m": 8.76, "15m": 7.22}
    cpu = parse_cpu_times(STAT)
    assert cpu["user"] == 396817 and cpu["idle"] == 34574 and cpu["steal"] == 1620
    assert "steal" not in parse_cpu_times(STAT_OLD_KERNEL)
    assert parse_process_stat(PYTHON) == (1468, "python", 1466, 5453 + 671)
    # A command name with spaces and parentheses: the fields are counted from the last ')'.
    odd = "77 (my (odd) name) S 1 77 77 0 -1 0 0 0 0 0 12 3 0 0 20 0 1 0 5 0 0\n"
    assert parse_process_stat(odd) == (77, "my (odd) name", 1, 15)
    with pytest.raises(ValueError):
        parse_loadavg("")


def _fake_proc(root: Path, stat: str, processes: dict[int, tuple[str, int, int]]) -> None:
    root.mkdir(exist_ok=True)
    (root / "loadavg").write_text(LOADAVG)
    (root / "stat").write_text(stat)
    for pid, (name, parent, ticks) in processes.items():
        (root / str(pid)).mkdir(exist_ok=True)
        fields = ["S", str(parent)] + ["0"] * 9 + [str(ticks), "0"] + ["0"] * 7
        (root / str(pid) / "stat").write_text(f"{pid} ({name}) {' '.join(fields)}\n")


def test_snapshot_measures_others_and_steal_over_its_window(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    own = 500
    _fake_proc(proc, STAT, {1468: ("python", 1466, 6124), own: ("litevit", 1, 100), 501: ("worker", own, 0)})

    def during_window(seconds):  # the other python used 95 ticks (0.95 s of CPU) in 1 s
        _fake_proc(
            proc,
            STAT_LATER,
            {1468: ("python", 1466, 6219), own: ("litevit", 1, 300), 501: ("worker", own, 90)},
        )
        clock[0] += 1.0

    clock = [100.0]
    monkeypatch.setattr(machine_load.time, "sleep", during_window)
    monkeypatch.setattr(machine_load.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(machine_load.os, "sysconf", lambda name: 100)
    taken = snapshot(1.0, proc=str(proc), own_pid=own)
    facts = taken.facts
    assert facts["load_average"]["1m"] == 9.52
    assert facts["cpu_steal_percent"] == 10.0 and facts["cpu_busy_percent"] == 90.0
    # This process and its child are not "others".
    assert facts["busiest_processes"] == [{"pid": 1468, "name": "python", "cpu_percent": 95.0}]
    assert facts["others_cpu_percent"] == 95.0
    record = load_record(taken, taken)
    assert record["busy"] and ". " not in record["warning"] and record["warning"].endswith("when it is idle.")
    assert "other processes used 0.9" in record["warning"] and "python 95 %" in record["warning"]
    assert "load average was 9.52 on" in record["warning"] and "stole 10 %" in record["warning"]


def test_a_quiet_machine_has_no_warning_and_a_missing_proc_gives_nulls(tmp_path, monkeypatch):
    monkeypatch.setattr(machine_load.time, "sleep", lambda s: None)
    quiet = machine_load.LoadSnapshot(
        {
            "load_average": {"1m": 0.1, "5m": 0.1, "15m": 0.1},
            "cpus": 2,
            "cpu_steal_percent": 0.0,
            "others_cpu_percent": 3.0,
            "busiest_processes": [],
        }
    )
    record = load_record(quiet, quiet)
    assert record["busy"] is False and record["warning"] is None
    absent = snapshot(0.0, proc=str(tmp_path / "no-proc")).facts
    assert absent["load_average"] is None and absent["cpu_steal_percent"] is None
    assert absent["busiest_processes"] is None
    assert load_record(machine_load.LoadSnapshot(absent), machine_load.LoadSnapshot(absent))["busy"] is False


def _tiny_onnx(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_bench_records_the_load_and_refuses_too_few_iterations(tmp_path, capsys):
    model = _tiny_onnx(tmp_path / "tiny.onnx")
    doc = run_benchmark(model, iterations=samples_needed(), log=lambda s: None)
    load = doc["machine_load"]
    assert set(load) >= {"start", "end", "busy", "warning", "cpu_steal_percent_during_runs"}
    assert load["start"]["load_average"] is not None and load["end"]["cpus"] >= 1
    assert load["warning"] is None or load["warning"] in doc["notes"]

    with pytest.raises(LitevitError, match="--iters 5 is too few for the p99 latency .* at least 100"):
        run_benchmark(model, iterations=5, log=lambda s: None)
    allowed = run_benchmark(model, iterations=5, allow_few_iterations=True, log=lambda s: None)
    assert any("fewer than the 100 its p99 needs" in note for note in allowed["notes"])

    assert main(["bench", str(model), "--iters", "5", "--json", str(tmp_path / "r.json")]) == 2
    assert "--allow-few-iterations" in capsys.readouterr().err
    code = main(
        ["bench", str(model), "--iters", "5", "--allow-few-iterations", "--json", str(tmp_path / "r.json")]
    )
    assert code == 0
    assert json.loads((tmp_path / "r.json").read_text())["runs"][0]["iterations"] == 5


def test_a_seconds_run_with_too_few_iterations_is_refused_after_it_ran():
    runs = [{"batch": 1, "measure": "host", "iterations": 2, "latency_ms": {"mean": 2448.0}}]
    with pytest.raises(LitevitError) as refused:
        _check_iterations_done(runs, 3.0, allow_few=False)
    message = str(refused.value)
    assert "only 2 timed iteration(s) of batch 1 (host) ran in 3 s" in message
    assert "--seconds 368" in message and "--allow-few-iterations" in message
    assert samples_needed((50, 90)) == 10 and samples_needed((50, 90, 95, 99)) == 100
