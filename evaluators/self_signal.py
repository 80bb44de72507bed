"""Signals a process sends itself to stop its own run, safe against the run ending meanwhile.

The Ray head watchdog (`evaluators.ray_executor`) stops a run the way two Ctrl-C do: SIGTERM
twice, a moment apart, while `evolve run`'s handlers are installed. A run that finishes its
in-flight work within that moment removes its handlers (default action: terminate), and a
second SIGTERM sent blindly then killed the process instead of letting it exit 1 as an
interrupted run. So a signal is sent only while a handler is installed, under a lock that the
run also takes to remove its handlers: the signal reaches the handler it was sent for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

_LOCK = threading.Lock()


def _handled(signum: int) -> bool:
    return signal.getsignal(signum) not in (signal.SIG_DFL, signal.SIG_IGN, None)


def send_stop_signals(times: int = 2, pause_s: float = 0.2,
                      signum: int = signal.SIGTERM) -> int:
    """Send `signum` to this process up to `times` times, `pause_s` apart, each only while
    something handles it (a bare script is never killed by it); how many were sent."""
    sent = 0
    for index in range(times):
        if index:
            time.sleep(pause_s)
        with _LOCK:
            if not _handled(signum):
                break
            os.kill(os.getpid(), signum)
            sent += 1
    return sent


@contextlib.contextmanager
def changing_handlers() -> Iterator[None]:
    """Hold while installing or removing the handlers `send_stop_signals` looks for."""
    with _LOCK:
        yield
