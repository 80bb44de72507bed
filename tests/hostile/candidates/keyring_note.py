# Leaves a note in the kernel keyring for a later candidate (mode "write"), or looks for one
# (mode "read"): through the user keyring with world-readable permissions (so another uid can
# read it), found again through /proc/keys or a keyring search. ctypes reaches the calls
# directly, as any native extension could.
import ctypes
import json

MODE, TOKEN = "__MODE__", "__TOKEN__"
ADD_KEY, KEYCTL = 248, 250
KEYCTL_SETPERM, KEYCTL_SEARCH, KEYCTL_READ = 5, 10, 11
USER_KEYRING = -4

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def write():
    payload = f"note-{TOKEN}".encode()
    serial = libc.syscall(ADD_KEY, b"user", f"evolve-{TOKEN}".encode(), payload,
                          len(payload), USER_KEYRING)
    if serial < 0:
        return {"stored": False, "errno": ctypes.get_errno()}
    libc.syscall(KEYCTL, KEYCTL_SETPERM, serial, 0x3F3F3F3F)
    return {"stored": True, "serial": serial}


def read_serial(serial):
    buffer = ctypes.create_string_buffer(256)
    size = libc.syscall(KEYCTL, KEYCTL_READ, serial, buffer, 256)
    return buffer.raw[:size].decode(errors="replace") if size > 0 else None


def read():
    serials = []
    try:
        with open("/proc/keys") as f:
            serials += [int(line.split()[0], 16) for line in f if TOKEN in line]
    except OSError:
        pass
    found = libc.syscall(KEYCTL, KEYCTL_SEARCH, USER_KEYRING, b"user",
                         f"evolve-{TOKEN}".encode(), 0)
    if found > 0:
        serials.append(found)
    notes = [note for note in map(read_serial, serials) if note]
    return {"notes": notes}


def report():
    seen = write() if MODE == "write" else read()
    return {"score": 1.0, "valid": True, "metrics": {}, "feedback": json.dumps(seen)}
