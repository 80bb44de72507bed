"""Starting one zygote (`evaluators.warm`) for the run process (`evaluators.warm_pool`): its
sandbox command, exactly a cold evaluation's (the same allow-list view through
`isolation.command_prefix` and its environment), the problem's hidden files handed over its
control socket, and its first word: ready or why not, with its pid as the kernel names it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from evaluators import isolation, syscall_filter
from evaluators.hidden import open_for_child
from evaluators.sandbox_common import MARKER_VAR, SandboxLimits, environment
from evaluators.view import View

START_TIMEOUT_S = 120.0


class WarmUnavailable(RuntimeError):
    """This problem cannot use a warm interpreter (the cold path is used instead)."""


def mount_point() -> Path:
    """The zygote's work dir path. At bubblewrap level only a mount point (the zygote gets a
    tmpfs there, each evaluation a fresh one over it, in namespaces of their own), so every
    zygote on the machine shares this one empty, root-owned folder and a killed run leaves
    nothing behind; a folder someone else made or can write is refused."""
    path = Path(tempfile.gettempdir()) / "evolve-warm"
    try:
        path.mkdir(mode=0o755)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise WarmUnavailable(f"{path} is not a folder only this user can write; not used")
    return path


def launch(ours: socket.socket, theirs: socket.socket, *, problem_dir: Path,
           evaluator_file: str, level: str, role: str, view: View, plan_dir: Path,
           hidden: tuple[str, ...], stderr: IO[bytes],
           python_path: str | None = None) -> subprocess.Popen[bytes]:
    """Start the zygote in `level`'s sandbox with `theirs` (closed here) as its control
    socket, `ours` the run's end; a judge zygote gets the problem's hidden files over it (a
    candidate zygote never imports the evaluator: it gets none)."""
    env = environment("warm", plan_dir, SandboxLimits(timeout_s=1), -1, None, evaluator_file,
                      None)
    if python_path:
        # Read once, at interpreter start: a shipped problem bundle (ray_node) goes first
        # here, as on a cold evaluation's path, or `problems.<name>` would not import.
        env["PYTHONPATH"] = python_path
    for key in ("EVOLVE_RESULT_FD", "EVOLVE_SANDBOX_LIMITS", MARKER_VAR,
                syscall_filter.SPEC_VAR):
        env.pop(key, None)
    env["EVOLVE_WARM_FD"] = str(theirs.fileno())
    # The sandbox command binds a program into the work dir; the zygote runs none (each
    # evaluation writes its own into a fresh tmpfs over it), so any readable file will do.
    prefix, prefix_env = isolation.command_prefix(
        level, view=view, work_dir=plan_dir, program=Path(__file__), work_dir_mb=64,
        devices=())
    env.update(prefix_env)
    try:
        hidden_fds = open_for_child(problem_dir, hidden if role == "judge" else ())
    except OSError:
        theirs.close()
        raise
    try:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-s", "-m", "evaluators.warm", str(problem_dir),
             evaluator_file, level, role],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            pass_fds=[theirs.fileno()], env=env, cwd=plan_dir, start_new_session=True)
        # The hidden files go over the control socket, not by inheritance: the sandbox
        # command (unshare) would otherwise hold them open for the zygote's whole life.
        # The zygote's first message read; it hands them to its evaluator as the cold
        # harness gets them (EVOLVE_HIDDEN_FDS) and closes them before its first fork.
        try:
            socket.send_fds(ours, [json.dumps(list(hidden_fds)).encode()],
                            list(hidden_fds.values()))
        except OSError:
            pass  # the zygote is gone already: the ready check says so
    finally:
        theirs.close()
        for fd in hidden_fds.values():  # the zygote has its own copies now
            os.close(fd)
    return proc


def await_ready(control: socket.socket) -> tuple[dict | None, int | None]:
    """The zygote's first word (None when it said nothing) and its pid as this process sees it
    (the kernel names the sender: SO_PASSCRED)."""
    control.settimeout(START_TIMEOUT_S)
    zygote_pid = None
    try:
        data, ancillary, _, _ = control.recvmsg(4096, socket.CMSG_SPACE(12))
        ready = json.loads(data or b"null")
        for level_, kind, creds in ancillary:
            if level_ == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                zygote_pid = struct.unpack("iII", creds[:12])[0]
    except (OSError, ValueError):
        ready = None
    control.settimeout(None)
    return (ready if isinstance(ready, dict) else None), zygote_pid
