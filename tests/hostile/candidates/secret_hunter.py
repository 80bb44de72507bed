import gc
import os
import sys

MARK = "judge-" + "secret-"
LIMIT_BYTES = 64 << 20


def _strings(value, depth=0):
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("latin-1")
    elif depth < 3 and isinstance(value, (list, tuple, set, frozenset)):
        for item in list(value)[:1000]:
            yield from _strings(item, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for item in list(value.values())[:1000]:
            yield from _strings(item, depth + 1)


def _in_memory():
    """Objects of this process: the collector's, every module's, every frame's."""
    for obj in gc.get_objects():
        yield from _strings(obj)
    for module in list(sys.modules.values()):
        yield from _strings(dict(getattr(module, "__dict__", {})))
    for frame in sys._current_frames().values():
        while frame is not None:
            yield from _strings(dict(frame.f_locals))
            yield from _strings(dict(frame.f_globals))
            frame = frame.f_back


def _other_processes():
    """What /proc shows of every other process: environment, command line, open files, and
    its memory where the kernel lets us read it."""
    budget = LIMIT_BYTES
    for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
        for name in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    yield f.read().decode("latin-1")
            except OSError:
                pass
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    handle = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
                except OSError:
                    continue
                try:
                    yield os.read(handle, 1 << 16).decode("latin-1")
                except OSError:
                    pass
                finally:
                    os.close(handle)
        except OSError:
            pass
        try:
            with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem:
                for line in maps:
                    span, perms = line.split()[:2]
                    if not perms.startswith("r") or budget <= 0:
                        continue
                    start, end = (int(x, 16) for x in span.split("-"))
                    size = min(end - start, budget)
                    try:
                        mem.seek(start)
                        budget -= size
                        yield mem.read(size).decode("latin-1")
                    except (OSError, ValueError, OverflowError):
                        continue
        except OSError:
            pass


def _files():
    """Files near this program and the code it can see (the problem folder among them)."""
    roots = [os.getcwd(), "/tmp", *os.environ.get("PYTHONPATH", "").split(os.pathsep),
             *[p for p in sys.path if p]]
    seen = 0
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                seen += 1
                if seen > 50_000:
                    return
                if "secret" in name:
                    try:
                        with open(os.path.join(folder, name), "rb") as f:
                            yield f.read(1 << 16).decode("latin-1")
                    except OSError:
                        pass


def probe():
    found = []
    for source in (_in_memory, _other_processes, _files):
        try:
            for text in source():
                at = text.find(MARK)
                if at >= 0:
                    found.append(text[at:at + 64])
        except Exception as exc:  # noqa: BLE001 - keep hunting elsewhere
            print(f"{source.__name__}: {type(exc).__name__}: {exc}")
    print(f"findings: {len(found)}")
    return found
