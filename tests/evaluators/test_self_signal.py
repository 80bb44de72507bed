"""The Ray head watchdog's stop signals: sent only while the run handles them, so a run that
ends between the two exits as an interrupted run (1) instead of being killed by the second
(CI once saw -15 from `test_ray_head_loss` when the run finished within the 0.2 s between them)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ENDS_AFTER_FIRST = """
    import asyncio, signal, sys, threading
    from evaluators.self_signal import changing_handlers, send_stop_signals

    async def main():
        loop = asyncio.get_running_loop()
        got = asyncio.Event()
        with changing_handlers():
            loop.add_signal_handler(signal.SIGTERM, got.set)
        sender = threading.Thread(
            target=lambda: print("sent", send_stop_signals(2, {pause}), flush=True))
        sender.start()
        await got.wait()
        {after}
        sender.join()

    asyncio.run(main())
    sys.exit(1)  # an interrupted run's exit code
"""

REMOVE = """with changing_handlers():
            loop.remove_signal_handler(signal.SIGTERM)"""


def run_script(source: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True,
                          text=True, env=env, timeout=60, cwd=ROOT)


def test_a_run_that_ends_after_the_first_signal_exits_as_interrupted_not_killed():
    result = run_script(ENDS_AFTER_FIRST.format(pause=0.3, after=REMOVE))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "sent 1" in result.stdout


def test_a_run_still_handling_gets_both_signals():
    result = run_script(ENDS_AFTER_FIRST.format(pause=0.1, after="await asyncio.sleep(0.5)"))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "sent 2" in result.stdout


def test_a_bare_script_is_never_signalled():
    result = run_script("""
        from evaluators.self_signal import send_stop_signals
        print("sent", send_stop_signals(2, 0.01))
    """)
    assert result.returncode == 0, result.stderr
    assert "sent 0" in result.stdout
