# Leaves a note in every persistent kernel object a program can make without privileges (mode
# "write"), or looks for them (mode "read"): SysV shared memory, message queue and semaphore
# set, a POSIX message queue, and files in the folders anyone may write (/dev/shm, /tmp,
# /var/tmp, /run/lock). They outlive the process that made them unless the sandbox gives each
# evaluation its own.
import ctypes
import json
import os

MODE, TOKEN = "__MODE__", "__TOKEN__"
FOLDERS = ("/dev/shm", "/tmp", "/var/tmp", "/run/lock")
KEY = int(TOKEN[:7], 16)
IPC_CREAT = 0o1000

libc = ctypes.CDLL(None, use_errno=True)
libc.mq_open.restype = ctypes.c_int


def write():
    made = {
        "shm": libc.shmget(KEY, 4096, IPC_CREAT | 0o666) >= 0,
        "msg": libc.msgget(KEY, IPC_CREAT | 0o666) >= 0,
        "sem": libc.semget(KEY, 1, IPC_CREAT | 0o666) >= 0,
        "mqueue": libc.mq_open(f"/evolve-{TOKEN}".encode(), os.O_CREAT | os.O_RDWR, 0o666,
                               None) >= 0,
    }
    for folder in FOLDERS:
        try:
            path = f"{folder}/evolve-{TOKEN}"
            with open(path, "w") as f:
                f.write(TOKEN)
            os.chmod(path, 0o666)
            made[folder] = True
        except OSError:
            made[folder] = False
    return {"made": made}


def read():
    found = {
        "shm": libc.shmget(KEY, 0, 0) >= 0,
        "msg": libc.msgget(KEY, 0) >= 0,
        "sem": libc.semget(KEY, 0, 0) >= 0,
        "mqueue": libc.mq_open(f"/evolve-{TOKEN}".encode(), os.O_RDONLY) >= 0,
    }
    for folder in FOLDERS:
        found[folder] = os.path.exists(f"{folder}/evolve-{TOKEN}")
    return {"found": [name for name, seen in found.items() if seen]}


def report():
    seen = write() if MODE == "write" else read()
    return {"score": 1.0, "valid": True, "metrics": {}, "feedback": json.dumps(seen)}
