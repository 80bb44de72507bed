"""The wall time of `evolve run` on 1,000 trivial programs, an earlier version against this one,
measured in one run.

Usage: python benchmarks/before_after.py [--before REV] [--programs 1000] [--repeats 1]
                                         [--in-flight 8] [--evaluations 2]

`--before` (default: main just before the first issue-30 merge, 22d8dcd, when every LLM call
went through litellm) is exported with `git archive` into a temporary folder; "after" is this
checkout as it is on disk. Both run the same command, `python -m evolve run` on their own copy
of the engine's `target` fixture problem (scripted diff replies, trivial evaluator, real
sandbox, archive on disk), with this interpreter and its installed libraries, each side's own
code first on the path (its sandboxed evaluations import that side's evaluators too). One
scripted OpenAI-compatible server in another process answers both. The runs alternate
(before, after, before, ...), so drift in the machine's load hits both alike.

Printed per side: the wall time of the whole command (start-up included: imports, schema, the
warm sandbox's start), the CPU of the command's process tree (the run and every sandboxed
child, from `wait4`), the programs stored, and the ratio after / before. The 1-minute load
average is printed before and after, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.overhead import SERVER  # noqa: E402
from benchmarks.overhead_baselines import MODEL  # noqa: E402

# main before the first issue-30 merge (22d8dcd): litellm for every call, the archive and the
# sandbox's parent side as they were then.
DEFAULT_BEFORE = "3f5adc539dafa8eceeb70a06082bcd90d760d0e3"
FIXTURE = Path("tests") / "engine" / "fixtures" / "target"

CONFIG = """\
seed = 1
[budget]
max_programs = {programs}
[concurrency]
proposals = {in_flight}
evaluations = {evaluations}
[mutation.mix]
diff = 1.0
[operators]
models = [{{ name = "{model}", api_base = "{base_url}" }}]
"""


def export(rev: str, into: Path) -> Path:
    """The tree of `rev` in `into` (git archive: no worktree registered in the repository)."""
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev], stdout=out,
                       check=True)
    root = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    archive.unlink()
    return root


def evolve_run(root: Path, config: Path, run_dir: Path, programs: int) -> dict[str, float]:
    """`python -m evolve run` from `root`: wall seconds, CPU seconds of its process tree,
    programs stored."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PYTHONPATH"] = str(root)
    command = [sys.executable, "-m", "evolve", "run", str(root / FIXTURE), "--config",
               str(config), "--run-dir", str(run_dir), "--no-live"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output = proc.stdout.read() if proc.stdout else b""
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"`evolve run` from {root} failed ({proc.returncode}):\n"
                         f"{output.decode(errors='replace')[-3000:]}")
    with sqlite3.connect(run_dir / "archive.sqlite") as db:
        stored = db.execute("SELECT count(*) FROM programs").fetchone()[0] - 1  # the initial
    if stored != programs:
        raise SystemExit(f"`evolve run` from {root} stored {stored} programs, not {programs}")
    # wait4's usage covers the command and every descendant it waited for (sandboxed children
    # reaped by the run, the warm zygote and its forks).
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "programs": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=DEFAULT_BEFORE)
    parser.add_argument("--programs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--evaluations", type=int, default=2)
    args = parser.parse_args()
    before_rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.before],
                                capture_output=True, text=True, check=True).stdout.strip()
    after_rev = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                               capture_output=True, text=True, check=True).stdout.strip()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(REPO)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="evolve-before-after-") as tmp:
            work = Path(tmp)
            sides = {f"before ({before_rev})": export(args.before, work),
                     f"after ({after_rev})": REPO}
            config = work / "config.toml"
            config.write_text(CONFIG.format(programs=args.programs, in_flight=args.in_flight,
                                            evaluations=args.evaluations, model=MODEL,
                                            base_url=base_url))
            print(f"`evolve run` on {args.programs} trivial programs (scripted LLM, "
                  f"{args.in_flight} proposals and {args.evaluations} evaluations in flight), "
                  f"sides alternating, {args.repeats} run(s) each; load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            results: dict[str, list[dict[str, float]]] = {label: [] for label in sides}
            for repeat in range(args.repeats):
                for n, (label, root) in enumerate(sides.items()):
                    found = evolve_run(root, config, work / f"run-{repeat}-{n}", args.programs)
                    results[label].append(found)
                    print(f"  {label:<22} run {repeat + 1}: wall {found['wall']:7.2f} s, "
                          f"CPU {found['cpu']:7.2f} s (run + sandboxes), "
                          f"{found['programs']:.0f} programs", flush=True)
        walls = {label: statistics.median(r["wall"] for r in runs)
                 for label, runs in results.items()}
        cpus = {label: statistics.median(r["cpu"] for r in runs)
                for label, runs in results.items()}
        (before, after) = list(walls)
        print(f"median wall: before {walls[before]:.2f} s, after {walls[after]:.2f} s = "
              f"{walls[after] / walls[before]:.2f}x; CPU: before {cpus[before]:.2f} s, after "
              f"{cpus[after]:.2f} s = {cpus[after] / cpus[before]:.2f}x; load average "
              f"{os.getloadavg()[0]:.2f}")
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
