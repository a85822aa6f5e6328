"""Atomic file writes and hashing: an interrupted write never leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from litevit.errors import LitevitError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, else delete it."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise LitevitError(f"cannot write to {str(target.parent)!r}: {exc.strerror}.") from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the usual permissions for a new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    with atomic_open(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_creatable_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` if it is a writable folder or could be created as one (its nearest existing parent
    is a writable folder), without creating anything; else one sentence."""
    folder = Path(path)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LitevitError(f"cannot create output folder {str(folder)!r}: {str(existing)!r} is not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LitevitError(
            f"output folder {str(folder)!r} is not writable."
            if existing == folder
            else f"cannot create output folder {str(folder)!r}: {str(existing)!r} is not writable."
        )
    return folder


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` if needed and prove it is writable, or raise one sentence."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LitevitError(f"cannot create output folder {str(folder)!r}: {exc.strerror}.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LitevitError(f"output folder {str(folder)!r} is not writable.")
    return folder
