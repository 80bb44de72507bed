"""What keeps the processes of one candidate apart (`Candidate.isolated`) beyond their memory.

Processes of one candidate share its sandbox: the work dir, /tmp, /dev/shm (files), SysV and
POSIX IPC objects, and abstract unix sockets (the network namespace). Each would let one run
tell another what it saw. A process the judge asks for apart from the others (forked by the
candidate's trusted host) gets, before any candidate code runs and while it is still root:
its own mount namespace with a fresh, size-capped tmpfs on every such folder (the program and
the interpreter's import paths bound back read-only), its own IPC namespace (and message-queue
file system) and its own network namespace.

What they still share: the uid and the PID namespace (signals between them, and what /proc
shows of another process, such as its name), and the machine's load (timing). A program can
use those only on purpose, with both ends written for it; module state, caches and files, what
a policy keeps without meaning to, stay its own.

Without root (a user namespace, or the rlimits level without privileges) the namespaces
cannot be made: the processes then share the folders above, and `apart` says why.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

from evaluators import mountns

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x08000000, 0x40000000
_TMP_MB = 16


def plan(program: Path, limits: dict) -> dict:
    """Computed once in the host: the folders anyone may write, each with its size cap in MB
    (the sandbox's work dir, TMPDIR there, among them), and what must come back read-only
    (the program, the import paths under them)."""
    from evaluators.isolation import shared_writable

    big = max(64, 2 * int(limits.get("max_file_mb") or 32))
    fresh = {folder: _TMP_MB for folder in shared_writable() if os.path.isdir(folder)}
    fresh["/dev/shm"] = big
    work = os.environ.get("TMPDIR")
    if work and os.path.isdir(work):
        fresh[str(Path(work).resolve())] = big
    folders = sorted(fresh, key=lambda f: Path(f).parts)  # parents first
    covered = [Path(f) for f in folders]
    own = [Path(work).resolve()] if work and os.path.isdir(work) else []
    keep = [str(program.resolve())]
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        # Import paths under a covered folder come back read-only; the work dir's own files
        # (the program apart) stay its own.
        if path.exists() and any(c in path.parents for c in covered) \
                and not any(w == path or w in path.parents for w in own):
            keep.append(str(path))
    return {"folders": [(f, fresh[f]) for f in folders], "keep_ro": keep,
            "cwd": os.getcwd()}


def apart(made: dict) -> str | None:
    """In a forked worker, before privileges drop: its own namespaces and fresh folders as
    `made` (`plan`) says; None when done, else why not (nothing was changed then)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        return f"no namespaces of its own ({os.strerror(errno)})"
    mountns._mount(libc, None, "/", None, mountns.MS_REC | mountns.MS_PRIVATE)
    for folder, size_mb in made["folders"]:
        if not os.path.isdir(folder):  # under a folder made fresh already
            os.makedirs(folder, mode=0o755)
        mountns._fresh(libc, folder, int(size_mb), [], made["keep_ro"])
    try:
        mountns.fresh_mqueue(libc)
    except OSError:
        pass  # no message-queue file system to show: nothing of another namespace either
    cwd = made["cwd"]
    if not os.path.isdir(cwd):  # it was in a folder made fresh
        os.makedirs(cwd, mode=0o755)
        os.chmod(cwd, 0o1777)
    os.chdir(cwd)  # the fresh one where it was covered: the old one stays the others'
    return None
