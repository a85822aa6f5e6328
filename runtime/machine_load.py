"""How busy the machine was around a benchmark: load average, CPU steal and the busiest other
processes, read from ``/proc`` (Linux; every figure is None where the file is absent).

A snapshot reads ``/proc/stat`` and every ``/proc/PID/stat`` twice, ``window_s`` apart, so CPU use
(all CPUs, stolen by the hypervisor, per process) is a rate over that window, not an average
since boot. ``litevit bench`` takes one snapshot before its timed runs and one after them, stores
both in the JSON (``machine_load``) and warns in one sentence when other work was competing for
the CPUs: a latency measured then is the machine's, not the model's.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = "/proc"
WINDOW_S = 0.25
TOP_PROCESSES = 5
# Thresholds of a busy machine. Other processes using half a CPU or more take cores and caches
# from the benchmark; a hypervisor stealing 5 % of CPU time makes latencies jitter; a 1-minute
# load average above the CPU count (before the benchmark starts) means runnable work was queued.
BUSY_OTHERS_CPUS = 0.5
BUSY_STEAL_PERCENT = 5.0
# /proc/stat's "cpu" line, in kernel order; steal (Linux 2.6.11+) and the guest columns are absent
# on old kernels.
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")
_IDLE_FIELDS = ("idle", "iowait")
_GUEST_FIELDS = ("guest", "guest_nice")  # already counted in user and nice


# --------------------------------------------------------------------------------------------
# Parsers of /proc lines (tested on recorded lines)


def parse_loadavg(text: str) -> dict[str, float]:
    """``/proc/loadavg`` ("0.52 0.58 0.59 2/123 4567") -> 1, 5 and 15-minute load averages."""
    parts = text.split()
    if len(parts) < 3:
        raise ValueError(f"not a /proc/loadavg line: {text!r}")
    return {"1m": float(parts[0]), "5m": float(parts[1]), "15m": float(parts[2])}


def parse_cpu_times(stat_text: str) -> dict[str, int]:
    """The aggregate ``cpu`` line of ``/proc/stat`` -> clock ticks per column (only the columns the
    kernel writes: no ``steal`` key on kernels without it)."""
    for line in stat_text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            values = [int(value) for value in parts[1 : 1 + len(CPU_FIELDS)]]
            if len(values) < 4:
                raise ValueError(f"the cpu line of /proc/stat has too few columns: {line!r}")
            return dict(zip(CPU_FIELDS, values))
    raise ValueError("/proc/stat has no aggregate cpu line")


def parse_process_stat(text: str) -> tuple[int, str, int, int]:
    """``/proc/PID/stat`` -> (pid, command name, parent pid, user + system clock ticks).

    The name is in parentheses and may itself hold spaces and parentheses, so the fields after it
    are counted from the last ')'."""
    open_paren, close_paren = text.index("("), text.rindex(")")
    pid = int(text[:open_paren])
    name = text[open_paren + 1 : close_paren]
    rest = text[close_paren + 1 :].split()
    # rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return pid, name, int(rest[1]), int(rest[11]) + int(rest[12])


# --------------------------------------------------------------------------------------------
# Reading /proc


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # absent (not Linux), or a process that exited between listing and reading
        return None


def _processes(proc: Path) -> dict[int, tuple[str, int, int]]:
    """pid -> (name, parent pid, CPU ticks) of every process readable now."""
    found: dict[int, tuple[str, int, int]] = {}
    try:
        entries = [entry for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        return found
    for entry in entries:
        text = _read(proc / entry / "stat")
        if text is None:
            continue
        try:
            pid, name, parent, ticks = parse_process_stat(text)
        except (ValueError, IndexError):
            continue
        found[pid] = (name, parent, ticks)
    return found


@dataclass
class _Reading:
    monotonic: float
    cpu: dict[str, int] | None
    processes: dict[int, tuple[str, int, int]] = field(default_factory=dict)


def _reading(proc: Path) -> _Reading:
    stat = _read(proc / "stat")
    cpu = None
    if stat is not None:
        try:
            cpu = parse_cpu_times(stat)
        except ValueError:
            cpu = None
    return _Reading(time.monotonic(), cpu, _processes(proc))


def _cpu_shares(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, Any]:
    """Busy and stolen share of all CPUs between two /proc/stat readings, in percent."""
    if before is None or after is None:
        return {"cpu_busy_percent": None, "cpu_steal_percent": None}
    counted = [name for name in after if name in before and name not in _GUEST_FIELDS]
    total = sum(after[name] - before[name] for name in counted)
    if total <= 0:
        return {"cpu_busy_percent": None, "cpu_steal_percent": None}
    idle = sum(after[name] - before[name] for name in _IDLE_FIELDS if name in counted)
    steal = after["steal"] - before["steal"] if "steal" in counted else None
    return {
        "cpu_busy_percent": round(100.0 * (total - idle) / total, 1),
        "cpu_steal_percent": None if steal is None else round(100.0 * steal / total, 1),
    }


@dataclass
class LoadSnapshot:
    """What :func:`snapshot` saw: ``facts`` for the JSON, and the raw CPU counters at the start and
    end of its window (to measure steal over the runs between two snapshots)."""

    facts: dict[str, Any]
    cpu_first: dict[str, int] | None = None
    cpu_last: dict[str, int] | None = None


def snapshot(window_s: float = WINDOW_S, *, proc: str = PROC, own_pid: int | None = None) -> LoadSnapshot:
    """The machine's load now: load averages, CPU busy and steal over ``window_s`` seconds, and the
    busiest processes other than this one (and its children) over the same window. Figures that
    this system does not expose are None."""
    root = Path(proc)
    own = os.getpid() if own_pid is None else own_pid
    loadavg_text = _read(root / "loadavg")
    first = _reading(root)
    time.sleep(window_s)
    second = _reading(root)
    elapsed = max(second.monotonic - first.monotonic, 1e-6)
    ticks_per_second = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    others: list[dict[str, Any]] = []
    for pid, (name, parent, ticks) in second.processes.items():
        if pid == own or parent == own or pid not in first.processes:
            continue
        used = (ticks - first.processes[pid][2]) / ticks_per_second / elapsed
        if used > 0:
            others.append({"pid": pid, "name": name, "cpu_percent": round(100.0 * used, 1)})
    others.sort(key=lambda p: p["cpu_percent"], reverse=True)
    readable = bool(second.processes)
    facts = {
        "load_average": parse_loadavg(loadavg_text) if loadavg_text else None,
        "cpus": os.cpu_count(),
        "window_s": round(elapsed, 3),
        **_cpu_shares(first.cpu, second.cpu),
        # percent of one CPU, as top shows it: 190 = nearly two CPUs busy with other work
        "others_cpu_percent": round(sum(p["cpu_percent"] for p in others), 1) if readable else None,
        "busiest_processes": others[:TOP_PROCESSES] if readable else None,
    }
    return LoadSnapshot(facts, first.cpu, second.cpu)


# --------------------------------------------------------------------------------------------
# Judging it


def _busy_reasons(start: dict[str, Any], end: dict[str, Any], steal_during: float | None) -> list[str]:
    reasons = []
    for when, snap in (("before", start), ("after", end)):
        others = snap.get("others_cpu_percent")
        if others is not None and others >= 100.0 * BUSY_OTHERS_CPUS:
            top = ", ".join(f"{p['name']} {p['cpu_percent']:.0f} %" for p in snap["busiest_processes"][:3])
            reasons.append(f"other processes used {others / 100.0:.1f} CPUs {when} the runs ({top})")
            break
    load = start.get("load_average")
    cpus = start.get("cpus")
    if load and cpus and load["1m"] > cpus:
        reasons.append(f"the load average was {load['1m']:.2f} on {cpus} CPUs before the runs")
    steal = [start.get("cpu_steal_percent"), end.get("cpu_steal_percent"), steal_during]
    worst = max((s for s in steal if s is not None), default=None)
    if worst is not None and worst >= BUSY_STEAL_PERCENT:
        reasons.append(f"the hypervisor stole {worst:.0f} % of CPU time")
    return reasons


def load_record(start: LoadSnapshot, end: LoadSnapshot) -> dict[str, Any]:
    """The bench JSON's ``machine_load``: both snapshots, CPU steal over the runs between them,
    whether the machine was busy, and the one-sentence warning (None when it was quiet)."""
    steal_during = _cpu_shares(start.cpu_last, end.cpu_first)["cpu_steal_percent"]
    reasons = _busy_reasons(start.facts, end.facts, steal_during)
    warning = None
    if reasons:
        warning = (
            f"the machine was busy ({'; '.join(reasons)}), so these latencies are probably higher and "
            f"noisier than this model's on a quiet machine: rerun when it is idle."
        )
    return {
        "source": "/proc (Linux)" if start.facts.get("load_average") is not None else None,
        "start": start.facts,
        "end": end.facts,
        "cpu_steal_percent_during_runs": steal_during,
        "busy": bool(reasons),
        "warning": warning,
    }


__all__ = [
    "LoadSnapshot",
    "load_record",
    "parse_cpu_times",
    "parse_loadavg",
    "parse_process_stat",
    "snapshot",
]
