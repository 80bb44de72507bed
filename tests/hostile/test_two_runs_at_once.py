"""Two runs at once on one machine, each with its own $TMPDIR: their evaluations never hold the
same throw-away uid at the same time, so one's clean-up (which kills every process of its uid)
never kills the other's evaluation.

The runs are separate processes, as two `evolve run`s are. To make a clash certain rather than
one chance in hundreds, each shrinks the uid pool to a single uid (the module constant, set in
that process only): both then need that uid, and the second must wait for the first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evaluators import isolation, warm

REPO = Path(__file__).resolve().parents[2]
PROBLEM = REPO / "tests" / "fixtures" / "trusting_problem"
LEVEL = isolation.available_levels()[0]

pytestmark = pytest.mark.skipif(not isolation.uid_drop_possible(LEVEL),
                                reason="throw-away uids are used only as root")

# Reports its uid and when it ran; the first run's candidate runs long enough for the second
# run's whole evaluation (and its clean-up) to happen meanwhile.
CANDIDATE = textwrap.dedent('''
    import os, time

    def report():
        start = time.time()
        time.sleep(__SLEEP__)
        return {"score": float(os.getuid()), "valid": True, "feedback": "",
                "metrics": {"start": start, "end": time.time()}}
''')

RUN = textwrap.dedent('''
    import json, sys, time
    from pathlib import Path
    from evaluators import sandbox
    if hasattr(sandbox, "_UID_COUNT"):  # where the pool was defined before
        sandbox._UID_COUNT = 1
    else:
        from evaluators import uid_leases
        uid_leases.UID_COUNT = 1
    from evaluators.sandbox import SandboxLimits, run_sandboxed
    from evaluators.warm_pool import WarmPool

    level, warm, code = sys.argv[1], sys.argv[2] == "warm", sys.stdin.read()
    pool = WarmPool() if warm else None
    run = pool.run if pool else run_sandboxed
    outcome = run(problem_dir=Path(sys.argv[3]), evaluator_file="evaluate.py", code=code,
                  stage="only", limits=SandboxLimits(timeout_s=30, memory_mb=320), level=level)
    if pool:
        pool.close()
    print(json.dumps({"uid": outcome.uid, "result": outcome.result,
                      "stderr": outcome.stderr[-500:]}))
''')


def _start_run(tmp: Path, sleep_s: float, path: str) -> subprocess.Popen[str]:
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", RUN, LEVEL, path, str(PROBLEM)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                            cwd=REPO)
    assert proc.stdin is not None
    proc.stdin.write(CANDIDATE.replace("__SLEEP__", str(sleep_s)))
    proc.stdin.close()
    proc.stdin = None  # communicate() must not touch it again
    return proc


@pytest.mark.parametrize("path", ["cold", "warm"])
def test_two_runs_with_different_tmpdirs_never_share_a_uid(tmp_path, path):
    if path == "warm" and not warm.supported(LEVEL):
        pytest.skip("no warm path here")
    first = _start_run(tmp_path / "a", 4.0, path)
    time.sleep(1.5)  # the first run's candidate is sleeping now
    second = _start_run(tmp_path / "b", 0.0, path)
    outs = []
    for proc in (first, second):
        stdout, _ = proc.communicate(timeout=60)
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    a, b = outs
    assert a["result"] and a["result"].get("valid"), f"the first run's evaluation was killed: {a}"
    assert b["result"] and b["result"].get("valid"), b
    assert a["uid"] is not None and b["uid"] is not None
    if a["uid"] == b["uid"]:
        # One uid for both: then never at the same time.
        ma, mb = a["result"]["metrics"], b["result"]["metrics"]
        assert mb["start"] >= ma["end"] or ma["start"] >= mb["end"], (ma, mb)


LEASE_ALL = textwrap.dedent('''
    import sys
    from evaluators import sandbox
    from evaluators.sandbox import _UidLease
    if hasattr(sandbox, "_UID_COUNT"):  # where the pool was defined before
        UID_COUNT = sandbox._UID_COUNT
    else:
        from evaluators.uid_leases import UID_COUNT
    held = [_UidLease() for _ in range(UID_COUNT)]
    print("held", flush=True)
    sys.stdin.read()  # hold them until the test closes our stdin
''')

LEASE_ONE = textwrap.dedent('''
    import signal, sys
    from evaluators.sandbox import _UidLease

    def give_up(*_):
        print("none free")
        sys.exit(0)

    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(2)
    print("got", _UidLease().uid)
''')


def test_a_uid_held_under_one_tmpdir_is_not_leased_under_another(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", LEASE_ALL], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO,
                              env={**env, "TMPDIR": str(tmp_path / "a")})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        other = subprocess.run([sys.executable, "-c", LEASE_ONE], capture_output=True,
                               text=True, cwd=REPO, timeout=30,
                               env={**env, "TMPDIR": str(tmp_path / "b")})
        assert other.stdout.strip() == "none free", other.stdout + other.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
