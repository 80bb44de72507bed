"""The candidate's seccomp filter: system calls a program never needs are refused, and every
refusal is recorded (failure kind `sandbox-denied`) even when the program ignores the error.

Refused: the kernel keyring (a store that outlives the evaluation: a channel to a later
candidate, stage or run), new namespaces (user namespaces above all: root of one can undo the
sandbox's mounts), another process's memory or descriptors (ptrace and its relatives), bpf,
perf events, mounts, kernel modules, clocks, swap, reboot and installing a seccomp filter of
one's own (a filter with a listener could answer its own refusals). Absent rather than refused
(ENOSYS, not recorded, as on a kernel without them, so that libraries probing for them fall
back): io_uring, userfaultfd and `clone3`, as in container runtimes: its flags lie in memory a
filter cannot read, and the C library then falls back to `clone`, whose flags it can.

Two halves, so that the sandbox needs no library:
- the run process compiles the filter once with libseccomp (`pyseccomp`, a ctypes binding; it
  knows every architecture's system call numbers and refuses foreign-architecture calls) into a
  classic BPF program, handed to the sandbox in EVOLVE_SECCOMP (`environment()`);
- inside the sandbox, `Listener.install()` loads that program on the supervising process with
  a *listener* (SECCOMP_RET_USER_NOTIF): the supervisor forks the candidate's process after it,
  so the candidate and everything it starts carry the filter, and a refused call waits until
  the supervisor records it and answers EPERM. The candidate never holds the
  listener's descriptor (closed in the child right after the fork). A kernel without listeners
  (before 5.0) still refuses (ENOSYS), without the record.

The candidate-process launcher calls, in this order: `Listener.install()` (as the process
that will fork the candidate), fork, `close_in_child()` in the child; in the parent, `answer()`
whenever `fd` is readable while it waits for the candidate, and `stop()` once it is over.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import fcntl
import functools
import json
import os
import select
import struct
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)  # loaded at import: a warm interpreter's forks share it

SPEC_VAR = "EVOLVE_SECCOMP"

# Why each refused call is refused, in the words a failure reason uses.
_WHY = {
    "the kernel keyring (it outlives the evaluation)": (
        "add_key", "keyctl", "request_key"),
    "another process's memory or descriptors": (
        "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp"),
    "kernel interfaces a program never needs": (
        "bpf", "perf_event_open", "fanotify_init", "name_to_handle_at", "open_by_handle_at",
        "lookup_dcookie", "uselib", "vhangup", "iopl", "ioperm", "syslog", "acct", "quotactl",
        "quotactl_fd", "seccomp"),
    "mounts": (
        "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
        "fsconfig", "fsmount", "fspick", "mount_setattr"),
    "namespaces": ("setns",),
    "the machine itself (modules, clocks, swap, reboot, host names)": (
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime",
        "sethostname", "setdomainname"),
}
# clone/unshare with any of these flags make a new namespace.
_NAMESPACE_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000,
                    "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000,
                    "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                    "CLONE_NEWNET": 0x40000000}
_CLONE_NEWTIME = 0x80  # unshare only: in clone()'s first argument this byte is the exit signal
# Interfaces libraries probe for and do without (libuv and others fall back from io_uring): they
# answer ENOSYS, as a kernel without them would, and are not recorded as refusals.
_ABSENT = ("io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "clone3")

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_NEW_LISTENER = 1, 1 << 3
# _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp).
_NOTIF_RECV, _NOTIF_SEND = 0xC0502100, 0xC0182101
_NOTIF_SIZE = 80           # id u64, pid u32, flags u32, nr i32, arch u32, ip u64, args u64[6]
_MAX_RECORDED = 20


def refused_names() -> list[str]:
    return sorted({name for names in _WHY.values() for name in names} | {"clone", "unshare"})


def _why(name: str) -> str:
    if name in ("clone", "unshare"):
        return "a new namespace"
    return next((why for why, names in _WHY.items() if name in names), "not allowed")


@functools.cache
def compiled() -> tuple[dict[str, Any] | None, str]:
    """(the filter for the sandbox, '') or (None, why there is none), built once per process."""
    try:
        import pyseccomp as sc
    except Exception as exc:  # noqa: BLE001 - no (or too old a) libseccomp.so.2 on this machine
        return None, (f"no seccomp filter: libseccomp is not usable here ({exc}); install "
                      f"libseccomp2 (apt-get install libseccomp2)")
    try:
        refuse = sc.NOTIFY if sc.get_api() >= 5 else sc.ERRNO(errno.EPERM)
        filt = sc.SyscallFilter(sc.ALLOW)
        try:
            filt.set_attr(sc.Attr.CTL_OPTIMIZE, 2)  # a binary tree: fewer checks per call
        except OSError:
            pass  # libseccomp before 2.5: a linear list, correct all the same
        arch = sc.system_arch()
        names: dict[int, str] = {}
        for name in refused_names():
            number = sc.resolve_syscall(arch, name)
            if number < 0:
                continue  # not a call on this architecture (or unknown to this libseccomp)
            names[number] = name
            if name in ("clone", "unshare"):
                flags = dict(_NAMESPACE_FLAGS)
                if name == "unshare":
                    flags["CLONE_NEWTIME"] = _CLONE_NEWTIME
                for flag in flags.values():
                    filt.add_rule(refuse, name, sc.Arg(0, sc.MASKED_EQ, flag, flag))
            else:
                filt.add_rule(refuse, name)
        for name in _ABSENT:
            if sc.resolve_syscall(arch, name) >= 0:
                filt.add_rule(sc.ERRNO(errno.ENOSYS), name)
        fd = os.memfd_create("evolve-seccomp")
        try:
            with os.fdopen(os.dup(fd), "rb") as reader:
                filt.export_bpf(reader)
                program = os.pread(fd, 1 << 20, 0)
        finally:
            os.close(fd)
        seccomp_nr = sc.resolve_syscall(arch, "seccomp")
    except (OSError, ValueError, RuntimeError, NotImplementedError) as exc:
        return None, f"no seccomp filter: building it failed ({exc})"
    return {"bpf": base64.b64encode(program).decode(), "names": names,
            "seccomp_nr": seccomp_nr, "recorded": refuse == sc.NOTIFY}, ""


def status() -> str:
    """One line for `evolve doctor` and the isolation levels' exposure."""
    spec, why = compiled()
    if spec is None:
        return why
    recorded = ("each refusal recorded as sandbox-denied" if spec["recorded"] else
                "refusals not recorded (kernel before 5.0: no seccomp listener)")
    return (f"seccomp filter on the candidate: {len(spec['names'])} system calls refused "
            f"(keyring, new namespaces, ptrace, bpf, perf events, mounts, ...); {recorded}")


@functools.cache
def _encoded() -> str:
    spec, _ = compiled()
    return json.dumps(spec) if spec else ""


def environment() -> dict[str, str]:
    """The variable that hands the filter to the sandbox (empty when there is none)."""
    encoded = _encoded()
    return {SPEC_VAR: encoded} if encoded else {}


def names(raw: str) -> dict[int, str]:
    """The refused calls' names by number, from the filter as handed over (EVOLVE_SECCOMP)."""
    return {int(k): v for k, v in json.loads(raw)["names"].items()}


class Listener:
    """The filter loaded on this process, and the answers to its refusals: the supervising
    process watches `fd` in its own wait loop and calls `answer()` when it is readable (no
    thread: starting one costs milliseconds on a busy machine, on every evaluation)."""

    def __init__(self, fd: int | None, names: dict[int, str]):
        self.fd = fd
        self._names = names
        self._refused: list[str] = []
        self.count = 0

    @classmethod
    def install(cls, raw: str | None = None) -> Listener | None:
        """Load the filter from EVOLVE_SECCOMP (or `raw`) on this process; None without one.
        Raises OSError when the kernel refuses it (the evaluation must not run unfiltered)."""
        raw = os.environ.pop(SPEC_VAR, None) if raw is None else raw
        if not raw:
            return None
        spec = json.loads(raw)
        program = base64.b64decode(spec["bpf"])
        # Unprivileged processes may load a filter only once they cannot gain privileges by
        # exec; the uid drop (setuid) is not an exec and still works.
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
        buffer = ctypes.create_string_buffer(program, len(program))
        fprog = struct.pack("HxxxxxxP", len(program) // 8, ctypes.addressof(buffer))
        fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))
        names = {int(k): v for k, v in spec["names"].items()}
        fd = _libc.syscall(spec["seccomp_nr"], _SECCOMP_SET_MODE_FILTER,
                           _SECCOMP_FILTER_FLAG_NEW_LISTENER, fprog_buffer)
        if fd >= 0:
            os.set_inheritable(fd, False)
            return cls(fd, names)
        # No listener here (kernel before 5.0, or one already in this process's filters):
        # the refusals still happen, as ENOSYS, unrecorded.
        if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fprog_buffer, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"loading the seccomp filter failed: {os.strerror(err)}")
        return cls(None, names)

    def close_in_child(self) -> None:
        """In the forked candidate: drop the listener, which only the supervisor may hold."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def answer(self) -> bool:
        """Record one refused call (the listener is readable) and answer it with EPERM; False
        when there was none to answer. A listener whose filter no process carries any more
        (every one of them ended) stays readable for good: it is closed then."""
        assert self.fd is not None
        request = bytearray(_NOTIF_SIZE)
        try:
            fcntl.ioctl(self.fd, _NOTIF_RECV, request, True)
        except OSError:
            # The caller died meanwhile (ENOENT), a signal, or nobody left to filter.
            if self._hung_up():
                os.close(self.fd)
                self.fd = None
            return False
        notification_id, _, _, number = struct.unpack_from("QIIi", request)
        self.count += 1
        if len(self._refused) < _MAX_RECORDED:
            self._refused.append(self._names.get(number, f"system call {number}"))
        response = bytearray(struct.pack("QqiI", notification_id, 0, -errno.EPERM, 0))
        try:
            fcntl.ioctl(self.fd, _NOTIF_SEND, response, True)
        except OSError:
            pass  # the caller died meanwhile
        return True

    def _hung_up(self) -> bool:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        return any(events & select.POLLHUP and not events & select.POLLIN
                   for _, events in poller.poll(0))

    def stop(self) -> list[str]:
        """Stop answering (calls still waiting stay blocked until the evaluation's processes
        are killed); the refusals seen, first first."""
        while self.fd is not None and select.select([self.fd], [], [], 0)[0]:
            if not self.answer():  # what is already waiting
                break
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        return list(self._refused)


def denial_reason(refused: list[str], count: int) -> str:
    """The failure reason for a candidate whose calls were refused."""
    first = refused[0]
    more = f" ({count - 1} more refused call(s))" if count > 1 else ""
    return (f"the program called {first}, which the sandbox refuses ({_why(first)}){more}; "
            f"programs get no keyring, namespaces, ptrace, bpf, perf events or mounts")
