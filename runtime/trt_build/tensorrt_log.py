"""TensorRT's log, captured during a build: a failure is raised as its first ERROR line, and
the whole log is written next to the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from litevit._io import write_bytes
from litevit.errors import LitevitError

if TYPE_CHECKING:
    import tensorrt as trt


@dataclass
class CapturedLog:
    """What TensorRT logged (INFO and above), as (severity name, message)."""

    messages: list[tuple[str, str]] = field(default_factory=list)

    def first_error(self) -> str | None:
        return next(
            (text for severity, text in self.messages if severity in ("ERROR", "INTERNAL_ERROR")), None
        )

    def text(self) -> str:
        return "".join(f"[{severity}] {text}\n" for severity, text in self.messages)


def capturing_logger(captured: CapturedLog) -> trt.ILogger:
    import tensorrt as trt

    severity_names = {member: name for name, member in trt.ILogger.Severity.__members__.items()}

    class CapturingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            # VERBOSE is thousands of lines per build and never what explains a failure.
            name = severity_names.get(severity, str(severity))
            if name != "VERBOSE":
                captured.messages.append((name, msg))

    return CapturingLogger()


def one_line(message: str) -> str:
    first = " ".join(message.strip().split())
    return first.rstrip(".")


def tensorrt_failure(
    what: str, captured: CapturedLog, extra_errors: Sequence[str], log_path: Path
) -> LitevitError:
    """The first ERROR line as one sentence, after writing the whole log to ``log_path``."""
    lines = captured.text() + "".join(f"[PARSER] {e}\n" for e in extra_errors)
    write_bytes(log_path, lines.encode())
    first = captured.first_error() or (extra_errors[0] if extra_errors else None)
    reason = one_line(first) if first else "TensorRT logged no error message"
    return LitevitError(f"TensorRT could not {what}: {reason} (full log: {log_path}).")
