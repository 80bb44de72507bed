import time


def _burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def first():
    _burn(0.4)


def second():
    return None
