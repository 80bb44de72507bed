"""What runs on a Ray node for the executors (`ray_executor.py`, the warm actors of
`ray_warm.py`): where am I, is my code the driver's, unpack the run's problem bundle, sweep
this node's stale sandboxes, and run one stage in a sandbox with the bundle first on its path.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from evaluators import isolation as isolation_mod
from evaluators.problem_bundle import python_path, unpack, unpacked_dir
from evaluators.project_version import project_version
from evaluators.sandbox import SandboxLimits, SandboxOutcome, run_sandboxed


class VersionMismatch(ConnectionError):
    """A node runs other code than the driver: results would not be comparable."""


def node_place() -> dict[str, Any]:
    return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
            "host": socket.gethostname()}


# max_retries=0: we retry ourselves, so we know which node failed and why.
def check_node_version(driver_version: str) -> None:
    """Raise `VersionMismatch` when this node runs other code than the driver."""
    if driver_version and project_version() != driver_version:
        where = node_place()
        raise VersionMismatch(
            f"node {where['host']} ({where['node_id'][:8]}) runs adrs-evolve "
            f"{project_version()} but this driver runs {driver_version}; install the same "
            f"version (same commit) on every node and restart its Ray worker")


def bundle_here(bundle: list[Any], digest: str) -> Path:
    """The unpacked bundle's root on this node, unpacked now unless an earlier task did it."""
    root = unpacked_dir(digest)
    if not root.is_dir():
        # The bundle is passed inside a list so that only a node without the folder fetches it.
        root = unpack(ray.get(bundle[0]).data, digest)
    return root


def run_stage_here(bundle: list[Any], digest: str, problem_path: str, *, evaluator_file: str,
                   code: str, stage: str, limits: SandboxLimits, isolation: str,
                   extra_env: dict[str, str], gpu: bool, hidden: tuple[str, ...],
                   runner: Callable[..., SandboxOutcome] = run_sandboxed) -> SandboxOutcome:
    """One stage in a sandbox on this node, the problem imported from its shipped bundle."""
    sweep_this_node()  # a node that joined after the run started: its leftovers go first
    root = bundle_here(bundle, digest)
    level, _ = isolation_mod.detect_isolation(isolation)
    # The bundle first on the path: `problems.<name>` and its helpers are the shipped ones.
    env = {**extra_env, "PYTHONPATH": python_path(root)}
    if gpu:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in ray.get_gpu_ids())
    # Hidden files travel in the bundle; as on a local run they reach the evaluator as
    # descriptors and their paths are left out of the sandbox's view.
    return runner(problem_dir=root / problem_path, evaluator_file=evaluator_file, code=code,
                  stage=stage, limits=limits, level=level, extra_env=env, gpu=gpu,
                  hidden=hidden)


def token_auth_enabled() -> bool:
    """Whether this Ray process runs with token authentication (RAY_AUTH_MODE=token, which
    every node and driver must set alike)."""
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        return bool(is_token_auth_enabled())
    except ImportError:  # another Ray release: what the documented variable says
        return os.environ.get("RAY_AUTH_MODE", "").lower() == "token"


_swept_here = False


def sweep_this_node(again: bool = False) -> int:
    """Remove the sandbox folders that dead processes left on this node (a worker killed
    with SIGKILL cannot): every time a run starts (the probe of each node), and once per
    worker process otherwise (a node that joins later, at its first evaluation). Only
    folders whose owner process is gone on this machine are touched."""
    global _swept_here
    if _swept_here and not again:
        return 0
    _swept_here = True
    from evaluators.sandbox_dirs import sweep_stale_sandboxes

    return sweep_stale_sandboxes()


