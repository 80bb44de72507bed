"""Who spent the CPU of a run, measured inside the run itself (for `benchmarks/overhead.py`).

- `StepTimer` wraps `litellm.acompletion` so that every step of its coroutine is timed with
  the main thread's CPU clock: litellm's own share of the event loop's thread, whatever else
  runs between its steps. Tasks litellm spawns (its async logging) and its HTTP transport's
  callbacks run outside those steps and are left in the framework's share (conservative).
- `thread_cpu()` reads each live thread's CPU clock, so the sandbox's threads (named
  `sandbox_*`) and other threads (litellm's helpers) are measured, not estimated.

Wrapping litellm here is measurement only: the run calls the real litellm, which answers as
before; nothing of ours is replaced.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any


class StepTimer:
    """Main-thread CPU seconds spent running litellm's coroutines."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0  # > 0 while a timed step runs (nested steps are counted once)

    def wrap(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return _Timed(self, lambda: fn(*args, **kwargs))
        return timed

    def _step(self, step: Callable[[], Any]) -> Any:
        if self._depth:
            return step()
        self._depth += 1
        start = time.thread_time()
        try:
            return step()
        finally:
            self.seconds += time.thread_time() - start
            self._depth -= 1


class _Timed:
    """An awaitable driving the wrapped coroutine step by step, each step timed."""

    def __init__(self, timer: StepTimer, start: Callable[[], Awaitable[Any]]) -> None:
        self.timer = timer
        self.start = start

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self.timer._step(lambda: self.start().__await__())
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                if error is not None:
                    exc, error = error, None
                    yielded = self.timer._step(lambda e=exc: inner.throw(e))
                else:
                    yielded = self.timer._step(lambda v=value: inner.send(v))
            except StopIteration as stop:
                return stop.value
            try:
                value = yield yielded
            except BaseException as exc:  # noqa: BLE001 - cancellation goes to the coroutine
                error = exc


def thread_cpu() -> dict[str, float]:
    """CPU seconds of every live thread of this process, by thread name."""
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            found[thread.name] = time.clock_gettime(clock)
        except (OSError, ProcessLookupError):
            continue  # ended meanwhile
    return found
