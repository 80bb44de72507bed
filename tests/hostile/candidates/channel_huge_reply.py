import os
import time


def report():
    # Announce a reply of 4 GB on every descriptor that may be the channel.
    for fd in range(3, 64):
        try:
            os.write(fd, b"\xff\xff\xff\xff" + b"x" * 1024)
        except OSError:
            pass
    time.sleep(60)
