import time

_thread_time = time.thread_time

# Every clock reads zero, or crawls.
for name in ("perf_counter", "monotonic", "process_time", "time", "thread_time"):
    setattr(time, name, lambda: 0.0)
for name in ("perf_counter_ns", "monotonic_ns", "process_time_ns", "time_ns",
             "thread_time_ns"):
    setattr(time, name, lambda: 0)


def first():
    end = _thread_time() + 0.4
    while _thread_time() < end:
        pass


def second():
    return None
