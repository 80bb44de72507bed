"""The evaluation harness: `python -m evaluators.harness PROBLEM_DIR PROGRAM_FILE STAGE`.

It runs inside the sandbox as two processes:
- the *supervisor* (this process) never runs candidate code. It forks a worker, waits for it,
  validates what the worker reports and writes ONE JSON result to the result channel: the file
  descriptor named by EVOLVE_RESULT_FD (inherited from the executor; closed in the worker, so the
  candidate cannot write to it). Without that variable it prints the result (manual use).
- the *worker* applies the resource limits, drops to an unprivileged uid when asked (so process
  limits apply and the candidate cannot signal the supervisor), imports the problem's evaluator
  (which binds the genuine clock and validators), snapshots it, then calls
  `evaluate(program_path, stage)` and sends the raw return value to the supervisor.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import secrets
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from evaluators import (
    cgroup_join,
    harness_api,  # noqa: F401  (genuine clocks captured before any candidate)
    hidden,
    judge_proxy,
    mountns,
    plain,
    proctree,
    syscall_filter,
)
from evaluators.limits import apply_limits, drop_privileges
from evaluators.oom import kills_since, oom_kills
from evaluators.validate import classify_exception, classify_worker_exit, validate_returned

# Largest message a worker may send; bigger means "huge output" and is rejected.
MAX_MESSAGE_BYTES = 4 << 20


# Bound at import, before any candidate: the result is serialised and written with these.
_dumps = json.dumps
_write = os.write


def _send(fd: int, message: dict[str, Any], nonce: str) -> None:
    data = _dumps({**message, "nonce": nonce}, allow_nan=True).encode()
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        written = _write(fd, view)
        view = view[written:]


def _quiesce() -> None:
    """Once evaluate() is over, keep candidate code from running while we check and send:
    threads it left behind get no GIL turn (a huge switch interval; the checks and the
    serialisation do not block), and no signal handler of its own can fire."""
    sys.setswitchinterval(1e6)
    gc.disable()  # no candidate __del__ or gc callback runs in the middle of our checks
    signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGKILL,
                                                                    signal.SIGSTOP})


def _install_introspection_guards(problem_dir: Path, program: Path,
                                  problem_modules: set[str] | None = None) -> Any:
    """The source check and the audit hook, unless the problem allows introspection; returns
    a function listing what was denied (source refusals and run-time denials), or None when
    the problem allows introspection (then the evaluator's modules stay in sys.modules too)."""
    from evaluators import audit_guard, guard

    if os.environ.pop("EVOLVE_ALLOW_INTROSPECTION", "") == "1":
        return None
    if problem_modules is None:
        problem_modules = guard.problem_module_names(problem_dir)
    harness_api.configure_source_check(True, problem_modules)
    runtime_denials = audit_guard.install(program)
    return lambda: harness_api.refusals() + runtime_denials()


def _import_evaluator(problem_dir: Path) -> Any:
    import importlib.util

    # The executor names the evaluator file (problem.toml's `evaluator`); no need to parse it here.
    spec_path = problem_dir / os.environ.pop("EVOLVE_EVALUATOR_FILE", "evaluate.py")
    sys.path.insert(0, str(problem_dir))
    name = spec_path.stem
    spec = importlib.util.spec_from_file_location(name, spec_path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load evaluator {spec_path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "judge", None) or getattr(module, "evaluate", None)):
        raise RuntimeError(f"{spec_path} defines neither judge(candidate, stage) nor "
                           f"evaluate(program_path, stage)")
    return module


class Preloaded:
    """The problem's evaluator imported, and its guard snapshot taken, ahead of time by a warm
    interpreter (`evaluators.warm`) that never runs candidate code: every evaluation forks
    from that pristine state, so each gets its own copy-on-write copy of both."""

    def __init__(self, problem_dir: Path, evaluator_file: str):
        from evaluators import audit_guard, guard  # noqa: F401 - imported once, not per fork

        os.environ["EVOLVE_EVALUATOR_FILE"] = evaluator_file
        self.evaluator = _import_evaluator(problem_dir)
        self.snapshot = guard.Snapshot(guard.evaluator_modules(problem_dir))
        # Watching records writes only once a snapshot is active (in the fork): done here, the
        # modules' pages are not copied again for it in every fork.
        guard.watch(self.snapshot)
        self.problem_modules = guard.problem_module_names(problem_dir)


def _worker(problem_dir: Path, program: Path, stage: str, channel: int, nonce: str,
            preloaded: Preloaded | None = None, admitted: int | None = None) -> None:
    """Runs in the forked child; never returns."""
    from evaluators import guard

    # The supervisor's SIGTERM handler is no business of the worker (and its globals would lead
    # candidate code to the harness).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        try:
            limits = json.loads(os.environ.pop("EVOLVE_SANDBOX_LIMITS", "{}"))
            uid = os.environ.pop("EVOLVE_SANDBOX_UID", "")
            apply_limits(limits, dedicated_uid=bool(uid))
            if uid:
                drop_privileges(int(uid))
            if preloaded is not None:
                # A warm interpreter imported the evaluator (and let it read its hidden files,
                # then closed them) before it forked this evaluation.
                os.environ.pop("EVOLVE_EVALUATOR_FILE", None)
                evaluator, snapshot = preloaded.evaluator, preloaded.snapshot
            else:
                try:
                    evaluator = _import_evaluator(problem_dir)
                except BaseException as exc:  # noqa: BLE001 - the problem's code
                    _send(channel, {"status": "evaluator-failed",
                                    "reason": f"{type(exc).__name__}: {exc}"}, nonce)
                    os._exit(0)
                snapshot = guard.Snapshot(guard.evaluator_modules(problem_dir))
            # The evaluator has loaded its hidden data; the candidate finds no descriptor.
            hidden.close_all()
            judge = getattr(evaluator, "judge", None)
            if callable(judge):
                _run_judge(judge, program, stage, channel, nonce)  # never returns
            evaluate = evaluator.evaluate
            guard.activate(snapshot)
            if preloaded is None:
                guard.watch(snapshot)
            denials = _install_introspection_guards(
                problem_dir, program, preloaded.problem_modules if preloaded else None)
            if denials is None:
                denials = lambda: []  # noqa: E731 - nothing is denied
            else:
                snapshot.hide()
            plain.bind_numpy(final=True)  # the genuine numpy, if the evaluator imported it
            # In the evaluation's cgroup (limits over the whole tree) before candidate code.
            cgroup_join.wait_admitted(admitted)
            start = harness_api.clock()
            try:
                value = evaluate(str(program), stage)
            except BaseException as exc:  # noqa: BLE001 - classified, reported
                _quiesce()
                snapshot.unhide()
                snapshot.check_and_restore()
                kind, reason = classify_exception(exc, program)
                _send(channel, {"status": "raised", "kind": kind, "reason": reason,
                                "tampered": snapshot.tampered, "denied": denials()}, nonce)
                os._exit(0)
            elapsed = harness_api.clock() - start
            _quiesce()
            snapshot.unhide()
            snapshot.check_and_restore()
            try:
                _send(channel, {"status": "returned", "value": value, "eval_s": elapsed,
                                "tampered": snapshot.tampered, "denied": denials(),
                                "candidate_errors": harness_api.candidate_errors()}, nonce)
            except (TypeError, ValueError) as exc:
                _send(channel, {"status": "unserializable", "reason": str(exc)[:300]}, nonce)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    except BaseException as exc:  # noqa: BLE001 - last resort: report, never hang
        try:
            _send(channel, {"status": "raised", "kind": "evaluator-error",
                            "reason": f"harness: {type(exc).__name__}: {exc}"[:300]}, nonce)
        except OSError:
            pass
    os._exit(0)


def _non_dumpable() -> None:
    """PR_SET_DUMPABLE 0: a process of the same uid cannot ptrace us or read /proc/<pid>/mem,
    environ or fd (evaluators.isolation.protect_this_process, without importing it here)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _run_judge(judge: Any, program: Path, stage: str, channel: int, nonce: str) -> None:
    """The judge/candidate API: `judge(candidate, stage)` with the candidate in its own
    sandboxed process behind the channel the executor handed us (EVOLVE_CANDIDATE_FD); outside
    a sandbox (manual use) a local, unsandboxed candidate process. No candidate code runs in
    this process, so none of the in-process guards is needed. Never returns."""
    # A candidate of our uid (weak levels) may not read our memory or files through /proc.
    _non_dumpable()
    fd = os.environ.pop(judge_proxy.FD_VAR, None)
    deadline = judge_proxy.stage_deadline()
    if fd is not None:
        opened = contextlib.nullcontext(judge_proxy.Candidate(
            socket.socket(fileno=int(fd)), deadline=deadline, program=program))
    else:
        opened = judge_proxy.local_candidate(program, deadline=deadline)
    with opened as candidate:
        start = time.perf_counter()
        try:
            value = judge(candidate, stage)
        except BaseException as exc:  # noqa: BLE001 - classified, reported
            kind, reason = classify_exception(exc, program)
            _send(channel, {"status": "raised", "kind": kind, "reason": reason}, nonce)
            os._exit(0)
        elapsed = time.perf_counter() - start
        try:
            _send(channel, {"status": "returned", "value": value, "eval_s": elapsed,
                            "candidate_cpu_s": candidate.cpu_s,
                            "candidate_errors": candidate.errors,
                            "candidate_ended": candidate.ended}, nonce)
        except (TypeError, ValueError) as exc:
            _send(channel, {"status": "unserializable", "reason": str(exc)[:300]}, nonce)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # Linux before 5.3
        return None


def _read_message(fd: int, pid: int, refusals: syscall_filter.Listener | None = None,
                  ) -> tuple[dict[str, Any] | None, int, Any, str]:
    """Read the worker's length-prefixed message; return (message, wait status, rusage, error).
    Stops at the worker's exit, not at EOF: an escaped grandchild may hold the pipe open.
    Meanwhile answers the seccomp filter's refusals (`refusals`)."""
    listener = refusals.fd if refusals is not None else None
    buffer = bytearray()
    status = None
    rusage = None
    error = ""
    eof = False
    # The worker's exit wakes us through a pidfd (no polling delay on every evaluation); once it
    # is reaped, only what is already in the pipe is read.
    pidfd = _pidfd(pid)
    while True:
        # Stop only after a look at the pipe that began once the exit was known: a worker that
        # writes its message and exits between a select() that saw nothing and wait4() would
        # otherwise lose the message.
        exit_known = status is not None
        watch = ([] if eof else [fd]) + ([pidfd] if pidfd is not None and status is None else [])
        if listener is not None and status is None:
            watch.append(listener)
        ready, _, _ = select.select(watch, [], [], 0 if status is not None else 0.05)
        if listener is not None and listener in ready:
            refusals.answer()  # type: ignore[union-attr]
        readable = fd in ready
        if readable:
            chunk = os.read(fd, 1 << 16)
            eof = not chunk
            buffer += chunk
            if len(buffer) > MAX_MESSAGE_BYTES + 8:
                error = f"the evaluation result is larger than {MAX_MESSAGE_BYTES >> 20} MB"
                break
        if status is None:
            done, wstatus, usage = os.wait4(pid, os.WNOHANG)
            if done:
                status, rusage = wstatus, usage
        if exit_known and (eof or not readable):
            break
    if pidfd is not None:
        os.close(pidfd)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        _, status, rusage = os.wait4(pid, 0)
    message = None
    if not error and len(buffer) >= 8:
        size = int.from_bytes(buffer[:8], "big")
        body = bytes(buffer[8:8 + size])
        if len(body) == size:
            try:
                message = json.loads(body)
            except ValueError:
                error = "the evaluation result could not be decoded"
    return message, status, rusage, error


def supervise(problem_dir: Path, program: Path, stage: str,
              preloaded: Preloaded | None = None) -> dict[str, Any]:
    read_fd, write_fd = os.pipe()
    result_fd = os.environ.pop("EVOLVE_RESULT_FD", None)
    # Only our worker knows this; a message without it was forged by the candidate.
    nonce = secrets.token_hex(16)
    # The seccomp filter, on this process so that the worker and all it starts carry it; this
    # process answers (and records) the refusals. Never evaluate unfiltered when one was sent.
    try:
        refusals = syscall_filter.Listener.install()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        return {"failure": "evaluator-error", "reason": f"sandbox setup failed: {exc}"}
    # The evaluation's cgroup, if the executor made one: this process moves the worker in
    # while the worker sets itself up (the move waits for a kernel grace period).
    cgroup_fds = cgroup_join.take_from_environment()
    admitted_r, admitted_w = os.pipe() if cgroup_fds else (None, None)
    started = time.perf_counter()
    oom_before = oom_kills()
    pid = os.fork()
    if pid == 0:
        if refusals is not None:
            refusals.close_in_child()
        os.close(read_fd)
        if result_fd is not None:
            os.close(int(result_fd))
        cgroup_join.close(cgroup_fds, admitted_w)
        _worker(problem_dir, program, stage, write_fd, nonce, preloaded, admitted_r)
    os.close(write_fd)
    candidate_fd = os.environ.get("EVOLVE_CANDIDATE_FD")
    if candidate_fd is not None:
        os.close(int(candidate_fd))  # the judge's alone: the candidate sees the judge's end
    hidden.close_all()  # only the worker's evaluator reads them
    cgroup_join.admit(pid, cgroup_fds, admitted_w)
    cgroup_join.close([], admitted_r)
    message, status, rusage, error = _read_message(read_fd, pid, refusals)
    refused = refusals.stop() if refusals is not None else []
    result: dict[str, Any] = {
        "cpu_s": rusage.ru_utime + rusage.ru_stime,
        "maxrss_mb": rusage.ru_maxrss / 1024,
        "harness_wall_s": time.perf_counter() - started,
    }
    limits = json.loads(os.environ.get("EVOLVE_SANDBOX_LIMITS", "{}"))
    if error:
        result.update(failure="invalid-output", reason=error)
    elif message is None:
        kind, reason = classify_worker_exit(status, result["maxrss_mb"], limits.get("memory_mb"),
                                            result["cpu_s"], limits.get("cpu_seconds"),
                                            kills_since(oom_before))
        result.update(failure=kind, reason=reason)
    elif message.get("nonce") != nonce:
        result.update(failure="invalid-output",
                      reason="the program wrote a forged result into the harness's channel")
    else:
        result.update(validate_returned(message))
    if refused:
        # Whatever the program made of the error: a refused call fails the evaluation.
        result = {key: result[key] for key in ("cpu_s", "maxrss_mb", "harness_wall_s")}
        result.update(failure="sandbox-denied",
                      reason=syscall_filter.denial_reason(refused, refusals.count))
    return result


def _on_sigterm(signum: int, frame: Any) -> None:
    # The executor's timeout: take every descendant (even ones that left our group) along.
    proctree.kill_descendants(os.getpid())
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m evaluators.harness PROBLEM_DIR PROGRAM_FILE STAGE", file=sys.stderr)
        return 2
    return run(Path(args[0]).resolve(), Path(args[1]).resolve(), args[2])


def run(problem_dir: Path, program: Path, stage: str, preloaded: Preloaded | None = None) -> int:
    """Supervise one evaluation and write its result (the body of `main`; a warm interpreter's
    forked child calls it directly)."""
    result_fd = os.environ.get("EVOLVE_RESULT_FD")
    # Orphaned descendants of the candidate come back to us, and die with us.
    proctree.set_subreaper()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        # The unshare level's file-system view, as root (a warm interpreter applied it before
        # it forked this evaluation, and the fork's environment carries no plan).
        mountns.apply_from_environment()
    except OSError as exc:
        result = {"failure": "evaluator-error", "reason": f"sandbox setup failed: {exc}"}
    else:
        result = supervise(problem_dir, program, stage, preloaded)
    proctree.kill_descendants(os.getpid())
    data = json.dumps(result, allow_nan=False).encode()
    if result_fd is None:
        print(data.decode())
    else:
        fd = int(result_fd)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
