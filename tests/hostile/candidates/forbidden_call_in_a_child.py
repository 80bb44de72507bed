# Makes one system call the sandbox has no reason to allow, in a child process, and ignores
# what comes of it: the parent returns a valid result as if nothing happened.
import ctypes
import os

NUMBER, ARGS = __NUMBER__, __ARGS__


def report():
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        result = libc.syscall(NUMBER, *ARGS)
        os._exit(0 if result >= 0 else min(ctypes.get_errno(), 255))
    _, status = os.waitpid(pid, 0)
    return {"score": 1.0, "valid": True, "metrics": {"child_errno": os.waitstatus_to_exitcode(status)},
            "feedback": "nothing to see here"}
