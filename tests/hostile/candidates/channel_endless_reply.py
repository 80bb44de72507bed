import os
import time


def report():
    # Announce 1000 bytes, send ten, and never the rest.
    for fd in range(3, 64):
        try:
            os.write(fd, (1000).to_bytes(4, "big") + b"\x85" * 10)
        except OSError:
            pass
    while True:
        time.sleep(1)
