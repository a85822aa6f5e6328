"""What litevit's deployment side takes from newer Pythons, for Python 3.8 (JetPack 5's Python).

The deployment side (litevit.artifacts, runtime/, serve/, calibration/, plugins/) runs on a Jetson
with JetPack 5.1's Python 3.8; CI checks it with vermin and runs tests/deploy on 3.8.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def strict_zip(*iterables: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """``zip(*iterables, strict=True)`` (Python 3.10): a ValueError when the lengths differ."""
    sentinel = object()
    iterators = [iter(iterable) for iterable in iterables]
    while True:
        items = [next(iterator, sentinel) for iterator in iterators]
        done = [item is sentinel for item in items]
        if all(done):
            return
        if any(done):
            raise ValueError(f"strict_zip: argument {done.index(True) + 1} is shorter than the others")
        yield tuple(items)


def remove_suffix(text: str, suffix: str) -> str:
    """``text.removesuffix(suffix)`` (Python 3.9)."""
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text
