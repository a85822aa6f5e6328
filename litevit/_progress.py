"""One progress display for long loops (benchmarks, calibration): tqdm when installed, else a
plain status line on stderr; both estimate the time left once the total is known."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from litevit._deps import has

LOG_INTERVAL_S = 10.0


class Progress:
    """tqdm when installed, else one plain status line on stderr (rewritten in place on a tty)."""

    def __init__(self, enabled: bool, total: int | None, label: str, unit: str = "iterations") -> None:
        self._bar: Any = None
        self._stream: IO[str] | None = None
        self._label, self._unit, self._total, self._count, self._last = label, unit, total, 0, 0.0
        self._start = self._last = time.monotonic()
        self._width = 0
        if not enabled:
            return
        if has("tqdm"):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit=unit, leave=False, file=sys.stderr)
        else:
            self._stream = sys.stderr

    def update(self, count: int = 1) -> None:
        self._count += count
        if self._bar is not None:
            self._bar.update(count)
        elif self._stream is not None:
            # In place on a terminal; a new line now and then in a log file.
            tty = self._stream.isatty()
            now = time.monotonic()
            if now - self._last >= (0.5 if tty else LOG_INTERVAL_S):
                self._last = now
                line = self._line()
                self._stream.write(f"\r{line:<{self._width}}" if tty else f"{line}\n")
                self._width = len(line)
                self._stream.flush()

    def _line(self) -> str:
        line = f"{self._label}: {self._count}{'/' + str(self._total) if self._total else ''} {self._unit}"
        elapsed = time.monotonic() - self._start
        if self._total and 0 < self._count < self._total:
            left = elapsed / self._count * (self._total - self._count)
            line += f", {elapsed:.0f} s so far, about {left:.0f} s left"
        elif self._count:
            line += f" in {elapsed:.0f} s"
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._stream is not None:
            self._stream.write(("\r" if self._stream.isatty() else "") + self._line() + "\n")
            self._stream.flush()
