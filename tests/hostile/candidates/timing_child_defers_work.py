import os
import time


def _burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def first():
    # Return at once; two children do the work while the judge is busy: one the program waits
    # for, and an orphan (its parent exits at once) that it never waits for.
    if os.fork() == 0:
        _burn(0.25)
        os._exit(0)
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            _burn(0.25)
            os._exit(0)
        os._exit(0)
    os.waitpid(middle, 0)


def second():
    try:
        while True:
            os.wait()
    except ChildProcessError:
        pass
    time.sleep(0.3)  # the orphan is someone else's child now: give it time to finish
