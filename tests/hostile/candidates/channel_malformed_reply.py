import os
import struct
import time

GARBAGE = b"\xc1\xc1\xc1 not a message \xff\x00"


def report():
    # Answer on every descriptor that may be the channel with bytes that are no message.
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack(">I", len(GARBAGE)) + GARBAGE)
        except OSError:
            pass
    time.sleep(60)
