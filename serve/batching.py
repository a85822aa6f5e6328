"""Dynamic batching for ``litevit serve``: requests queued by the event loop, run in batches by
worker threads, each worker with its own runner (runners are not thread-safe, and a TensorRT
runner's CUDA context belongs to the thread that opened it).

A worker takes the oldest request, then keeps taking requests until the batch holds ``limit``
rows or ``max_queue_delay_s`` has passed since that oldest request was queued (so a request that
already waited behind a busy worker is not held back further). The batch's inputs are
concatenated along axis 0, run once and the outputs split back by rows. How rows are put together
depends on the graph's batch axis (:class:`BatchAxis`):

- dynamic: the concatenation is run as it is;
- fixed at B > 1: requests of 1..B rows are packed up to B rows and zero-padded to B (the padding
  costs nothing more than running B rows, which a fixed-batch engine does anyway);
- none (an input or output without a leading batch axis): one request per run, shapes as declared.

Results reach the asyncio futures through ``loop.call_soon_threadsafe``: futures are not
thread-safe, and only the loop's thread may settle them.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from litevit._compat import strict_zip
from litevit.runtime.runners import Runner, TensorInfo


@dataclass(frozen=True)
class BatchAxis:
    """How a graph's axis 0 can be batched: ``kind`` is "dynamic", "fixed" (``size`` rows) or "none"."""

    kind: str
    size: int | None = None

    @classmethod
    def of(cls, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> BatchAxis:
        leading = [info.shape[0] if info.shape else None for info in [*inputs, *outputs]]
        if any(dim is None for dim in leading):
            return cls("none")
        # Every tensor must share one batch dim: the same name when dynamic, the same size when fixed.
        if all(isinstance(dim, str) for dim in leading) and len(set(leading)) == 1:
            return cls("dynamic")
        if all(isinstance(dim, int) for dim in leading) and len(set(leading)) == 1:
            return cls("fixed", int(leading[0]))  # type: ignore[arg-type]
        return cls("none")

    def max_rows(self, max_batch: int) -> int:
        """The most rows one run takes."""
        if self.kind == "dynamic":
            return max_batch
        if self.kind == "fixed":
            assert self.size is not None
            return self.size
        return 1


@dataclass(frozen=True)
class BatchTiming:
    """One successful model execution, for the statistics: its rows and requests, how long each
    request waited in the queue, and the three phases of the run (in nanoseconds): gathering and
    padding the inputs, the runner's inference (device copies included for TensorRT), splitting
    the outputs back into requests."""

    rows: int
    queue_ns: tuple[int, ...]
    compute_input_ns: int
    compute_infer_ns: int
    compute_output_ns: int


@dataclass
class _Pending:
    feeds: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]
    loop: asyncio.AbstractEventLoop
    queued_at: float = field(default_factory=time.perf_counter)

    def signature(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """Shapes apart from the batch rows: only requests with equal signatures concatenate."""
        return tuple((name, array.shape[1:]) for name, array in self.feeds.items())

    def settle(self, result: dict[str, np.ndarray] | None, error: BaseException | None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(
    future: asyncio.Future[dict[str, np.ndarray]],
    result: dict[str, np.ndarray] | None,
    error: BaseException | None,
) -> None:
    if future.done():  # the client went away and the handler was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class InferenceFailed(Exception):
    """The runner raised on a request: the server answers 500 for that request alone."""


_STOP = object()


class DynamicBatcher:
    """One model's queue and its worker threads; ``open_runner`` is called once in each worker."""

    def __init__(
        self,
        name: str,
        open_runner: Callable[[], Runner],
        *,
        instances: int,
        max_batch: int,
        max_queue_delay_s: float,
        on_batch: Callable[[BatchTiming], None] = lambda timing: None,
    ) -> None:
        self.name = name
        self.max_batch = max_batch
        self.max_queue_delay_s = max_queue_delay_s
        self.on_batch = on_batch
        self._queue: queue.Queue[Any] = queue.Queue()
        self._queued = 0
        self._queued_lock = threading.Lock()
        self._open_runner = open_runner
        self._opened: queue.Queue[Runner | BaseException] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"litevit-{name}-{index}", daemon=True)
            for index in range(instances)
        ]
        self.runner_inputs: list[TensorInfo] = []
        self.runner_outputs: list[TensorInfo] = []
        self.axis = BatchAxis("none")

    def start(self) -> None:
        """Start the workers and wait until each has opened its runner; the first failure is raised
        (after the workers that did open are stopped)."""
        for thread in self._threads:
            thread.start()
        opened = [self._opened.get() for _ in self._threads]
        failure = next((item for item in opened if isinstance(item, BaseException)), None)
        if failure is not None:
            self.stop()
            raise failure
        runner = opened[0]
        assert isinstance(runner, Runner)
        self.runner_inputs, self.runner_outputs = runner.inputs(), runner.outputs()
        self.axis = BatchAxis.of(self.runner_inputs, self.runner_outputs)

    def stop(self) -> None:
        """Let every worker finish what it holds, then close its runner and end."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a worker."""
        return self._queued

    def submit(self, feeds: dict[str, np.ndarray], rows: int) -> asyncio.Future[dict[str, np.ndarray]]:
        """Queue one request of ``rows`` rows (already validated); call on the event loop."""
        loop = asyncio.get_running_loop()
        pending = _Pending(feeds, rows, loop.create_future(), loop)
        with self._queued_lock:
            self._queued += 1
        self._queue.put(pending)
        return pending.future

    # ----------------------------------------------------------------------------------------
    # Worker threads

    def _take(self, block: bool, timeout: float | None = None) -> Any:
        item = self._queue.get(block, timeout)
        if item is not _STOP:
            with self._queued_lock:
                self._queued -= 1
        return item

    def _work(self) -> None:
        try:
            runner = self._open_runner()
        except BaseException as exc:  # reported to start(), which raises it in the main thread
            self._opened.put(exc)
            return
        self._opened.put(runner)
        axis = BatchAxis.of(runner.inputs(), runner.outputs())
        limit = axis.max_rows(self.max_batch)
        carry: _Pending | None = None
        try:
            while True:
                first = carry if carry is not None else self._take(block=True)
                carry = None
                if first is _STOP:
                    return
                batch, carry, stop = self._collect(first, limit)
                self._run(runner, axis, batch)
                if stop:
                    if carry is not None:
                        self._run(runner, axis, [carry])
                    return
        finally:
            runner.close()

    def _collect(self, first: _Pending, limit: int) -> tuple[list[_Pending], _Pending | None, bool]:
        """``first`` and the requests that join it; returns the batch, a request that did not fit
        (it starts this worker's next batch) and whether a stop was taken from the queue."""
        batch, rows = [first], first.rows
        deadline = first.queued_at + self.max_queue_delay_s
        signature = first.signature()
        while rows < limit:
            wait = deadline - time.perf_counter()
            try:
                item = self._take(block=wait > 0, timeout=wait if wait > 0 else None)
            except queue.Empty:
                break
            if item is _STOP:
                return batch, None, True
            if rows + item.rows > limit or item.signature() != signature:
                return batch, item, False
            batch.append(item)
            rows += item.rows
        return batch, None, False

    def _run(self, runner: Runner, axis: BatchAxis, batch: list[_Pending]) -> None:
        try:
            results = self._infer(runner, axis, batch)
        except Exception as exc:
            if len(batch) == 1:
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                batch[0].settle(None, InferenceFailed(f"{type(exc).__name__}: {detail}".rstrip(": ")))
                return
            # One bad request must not fail its neighbours: run each on its own.
            for pending in batch:
                self._run(runner, axis, [pending])
            return
        for pending, result in strict_zip(batch, results):
            pending.settle(result, None)

    def _infer(self, runner: Runner, axis: BatchAxis, batch: list[_Pending]) -> list[dict[str, np.ndarray]]:
        started = time.perf_counter()
        rows = [pending.rows for pending in batch]
        total = sum(rows)
        if len(batch) == 1:
            feeds = batch[0].feeds
        else:
            feeds = {name: np.concatenate([p.feeds[name] for p in batch]) for name in batch[0].feeds}
        if axis.kind == "fixed" and axis.size is not None and total < axis.size:
            feeds = {
                name: np.concatenate([array, np.zeros((axis.size - total, *array.shape[1:]), array.dtype)])
                for name, array in feeds.items()
            }
        inputs_ready = time.perf_counter()
        outputs = runner.infer(feeds)
        inferred = time.perf_counter()
        if axis.kind == "none":
            results = [outputs]
        else:
            for name, array in outputs.items():
                if array.ndim == 0 or array.shape[0] < total:
                    raise RuntimeError(
                        f"output {name!r} has shape {list(array.shape)}, fewer than the {total} rows run"
                    )
            offsets = np.cumsum([0, *rows])
            results = [
                {name: array[start:end] for name, array in outputs.items()}
                for start, end in strict_zip(offsets[:-1], offsets[1:])
            ]
        done = time.perf_counter()
        self.on_batch(
            BatchTiming(
                rows=total,
                queue_ns=tuple(_ns(started - pending.queued_at) for pending in batch),
                compute_input_ns=_ns(inputs_ready - started),
                compute_infer_ns=_ns(inferred - inputs_ready),
                compute_output_ns=_ns(done - inferred),
            )
        )
        return results


def _ns(seconds: float) -> int:
    return max(0, int(seconds * 1e9))
