"""Power and utilisation on Jetson from ``tegrastats``: a line parser and a background sampler.

One tegrastats line is a snapshot of RAM, per-core CPU load and clock, EMC and GPU (GR3D) load,
temperatures and the on-board INA3221 power rails. The formats this parser reads:

- JetPack 4 (L4T r32): rails without units, ``VDD_IN 5297/5297`` or ``POM_5V_IN 4148/4148``;
  temperatures as ``GPU@39.5C``.
- JetPack 5 (L4T r35): a leading ``MM-DD-YYYY HH:MM:SS`` timestamp, rails in milliwatts
  ``VDD_GPU_SOC 3183mW/3183mW``, GPU load per GPC ``GR3D_FREQ 0%@[1300,1300]``.
- JetPack 6 (L4T r36): as r35, with ``GR3D_FREQ 0%`` possibly without clocks and lower-case
  thermal zones ``cpu@47.968C``.

Each rail reads ``current/average``: the instantaneous value, then tegrastats' own running average
since tegrastats started. The benchmark keeps the instantaneous values of the samples taken
during its timed iterations and averages those itself, so power before the run (loading, warm-up)
does not leak into the figure.

Total power: the module input rail where the module has one (``VDD_IN`` on Orin NX/Nano and
Xavier NX, ``POM_5V_IN`` on Nano/TX2); its sub-rails are already inside it and are not added.
Jetson AGX Orin and AGX Xavier have no input rail: their total is the sum of the rails reported
(e.g. VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0), and the summary names the rails it summed.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Rails that measure the module's whole input, in order of preference.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
# A thermal zone that is powered down reads this sentinel (e.g. ``CV0@-256C`` on JetPack 5).
_SENSOR_OFF_C = -256.0

_TIMESTAMP = re.compile(r"^(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?")
_CPU_CORE = re.compile(r"^(\d+)%(?:@(\d+))?$")
_GR3D = re.compile(r"\bGR3D_FREQ (?:(\d+)%)?(?:@\[?([\d,]*)\]?)?")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%")
_TEMPERATURE = re.compile(r"(?<!\S)([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?!\S)")
# NAME current/average, with or without the mW unit (JetPack 4 prints none).
_RAIL = re.compile(r"(?<!\S)([A-Z][A-Z0-9_]*) (-?\d+)(?:mW)?/(-?\d+)(?:mW)?(?!\S)")


@dataclass
class TegrastatsSample:
    """One parsed tegrastats line. ``None`` / empty where the line does not report a figure."""

    timestamp: str | None = None
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    cpu_load_percent: list[float | None] = field(default_factory=list)  # per core; None = core off
    cpu_freq_mhz: list[int | None] = field(default_factory=list)
    gpu_load_percent: float | None = None
    gpu_freq_mhz: list[int] = field(default_factory=list)  # one per GPC where reported
    emc_load_percent: float | None = None
    temperatures_c: dict[str, float] = field(default_factory=dict)
    rails_mw: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (current, average)

    def total_power(self) -> tuple[str, int] | None:
        """(what was measured, milliwatts): the module input rail, else the sum of all rails."""
        for rail in INPUT_RAILS:
            if rail in self.rails_mw:
                return rail, self.rails_mw[rail][0]
        if not self.rails_mw:
            return None
        return "+".join(self.rails_mw), sum(current for current, _ in self.rails_mw.values())


def parse_tegrastats_line(line: str) -> TegrastatsSample:
    """Parse one tegrastats line; ``ValueError`` when it holds neither RAM nor power figures."""
    text = line.strip()
    sample = TegrastatsSample()
    if match := _TIMESTAMP.match(text):
        sample.timestamp = match.group(1)
    if match := _RAM.search(text):
        sample.ram_used_mb, sample.ram_total_mb = int(match.group(1)), int(match.group(2))
    if match := _CPU.search(text):
        # JetPack 4 on some modules prints one shared clock after the list: CPU [1%,5%]@102.
        shared_freq = int(match.group(2)) if match.group(2) else None
        for core in match.group(1).split(","):
            core = core.strip()
            if core_match := _CPU_CORE.match(core):
                sample.cpu_load_percent.append(float(core_match.group(1)))
                freq = core_match.group(2)
                sample.cpu_freq_mhz.append(int(freq) if freq else shared_freq)
            elif core == "off":
                sample.cpu_load_percent.append(None)
                sample.cpu_freq_mhz.append(None)
    if match := _GR3D.search(text):
        if match.group(1) is not None:
            sample.gpu_load_percent = float(match.group(1))
        if match.group(2):
            sample.gpu_freq_mhz = [int(f) for f in match.group(2).split(",") if f]
    if match := _EMC.search(text):
        sample.emc_load_percent = float(match.group(1))
    for name, value in _TEMPERATURE.findall(text):
        if float(value) != _SENSOR_OFF_C:
            sample.temperatures_c[name] = float(value)
    for name, current, average in _RAIL.findall(text):
        sample.rails_mw[name] = (int(current), int(average))
    if sample.ram_used_mb is None and not sample.rails_mw:
        raise ValueError(f"not a tegrastats line: {text[:80]!r}")
    return sample


def _mean(values: Iterable[float]) -> float | None:
    collected = list(values)
    return sum(collected) / len(collected) if collected else None


def summarize_samples(
    samples: list[TegrastatsSample], interval_ms: int | None = None
) -> dict[str, Any] | None:
    """Power and utilisation over ``samples`` (instantaneous values averaged); None when empty."""
    if not samples:
        return None
    totals = [total for total in (s.total_power() for s in samples) if total is not None]
    rail_names = sorted({name for s in samples for name in s.rails_mw})
    rails_mean = {
        name: _mean(s.rails_mw[name][0] for s in samples if name in s.rails_mw) for name in rail_names
    }
    temperature_names = sorted({name for s in samples for name in s.temperatures_c})
    ram = [s.ram_used_mb for s in samples if s.ram_used_mb is not None]
    total_mw = [mw for _, mw in totals]
    return {
        "source": "tegrastats",
        "samples": len(samples),
        "interval_ms": interval_ms,
        # What total_mw_* measure: an input rail's name, or "A+B+C" for a sum of rails.
        "total_rail": totals[-1][0] if totals else None,
        "total_mw_mean": _mean(total_mw),
        "total_mw_max": max(total_mw) if total_mw else None,
        "vdd_in_mw_mean": rails_mean.get("VDD_IN"),
        "rails_mw_mean": rails_mean,
        "gpu_load_percent_mean": _mean(s.gpu_load_percent for s in samples if s.gpu_load_percent is not None),
        "cpu_load_percent_mean": _mean(
            load for s in samples for load in s.cpu_load_percent if load is not None
        ),
        "emc_load_percent_mean": _mean(s.emc_load_percent for s in samples if s.emc_load_percent is not None),
        "ram_used_mb_max": max(ram) if ram else None,
        "temperature_c_max": {
            name: max(s.temperatures_c[name] for s in samples if name in s.temperatures_c)
            for name in temperature_names
        },
    }


class TegrastatsSampler:
    """Runs ``tegrastats --interval MS`` in the background and keeps every parsed line with the
    monotonic time it arrived, so a caller can take the samples of one timed window.

    tegrastats writes through C stdio, which buffers a pipe in 4 KiB blocks: lines would arrive
    in bursts, seconds late, and could not be matched to a window. Its stdout is therefore a
    pseudo-terminal, which stdio flushes line by line.
    """

    def __init__(self, interval_ms: int = 100, executable: str | None = None) -> None:
        if interval_ms < 1:
            raise ValueError(f"interval_ms must be positive; got {interval_ms}")
        self.interval_ms = interval_ms
        self.executable = executable or shutil.which("tegrastats")
        self._samples: list[tuple[float, TegrastatsSample]] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self.executable is not None

    def start(self) -> bool:
        """Start sampling; False (and nothing started) when tegrastats is not installed or fails."""
        if self.executable is None or self._process is not None:
            return self._process is not None
        controller, terminal = pty.openpty()
        try:
            self._process = subprocess.Popen(
                [self.executable, "--interval", str(self.interval_ms)],
                stdin=subprocess.DEVNULL,
                stdout=terminal,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError:
            os.close(controller)
            return False
        finally:
            os.close(terminal)
        self._reader = threading.Thread(target=self._read, args=(controller,), daemon=True)
        self._reader.start()
        return True

    def _read(self, controller: int) -> None:
        with os.fdopen(controller, "rb", buffering=0) as stream:
            pending = b""
            while True:
                try:
                    chunk = stream.read(4096)
                except OSError:  # EIO: the terminal closed because tegrastats exited
                    break
                if not chunk:
                    break
                arrived = time.monotonic()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    try:
                        sample = parse_tegrastats_line(raw.decode("utf-8", "replace"))
                    except ValueError:
                        continue  # a banner or warning line, not a sample
                    with self._lock:
                        self._samples.append((arrived, sample))

    def samples_between(self, start: float, end: float) -> list[TegrastatsSample]:
        """Samples that arrived within [start, end] (``time.monotonic()`` seconds)."""
        with self._lock:
            return [sample for arrived, sample in self._samples if start <= arrived <= end]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None

    def __enter__(self) -> TegrastatsSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.stop()


__all__ = [
    "INPUT_RAILS",
    "TegrastatsSample",
    "TegrastatsSampler",
    "parse_tegrastats_line",
    "summarize_samples",
]
