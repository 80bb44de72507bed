"""`evolve doctor --executor ray`: the Ray cluster a run would use, node by node (CPUs, GPUs,
custom resources, the sandbox isolation each node offers), as doctor checks."""

from __future__ import annotations

from evolve.cli.doctor_check import Check


def check_ray_cluster(address: str | None) -> list[Check]:
    """One check for the connection, then one per alive node."""
    try:
        import ray

        # lazy: ray is an optional extra, and the Ray executor imports it
        from evaluators.ray_executor import cluster_nodes, connect
    except ImportError:
        return [Check("ray", "fail", "ray is not installed",
                      "pip install -e '.[ray]' (the same Ray version on every node)")]
    where = address or "RAY_ADDRESS"
    try:
        connected_here = connect(address)
    except ConnectionError as exc:
        return [Check("ray", "fail", str(exc),
                      "start the head with `ray start --head` and pass --ray-address HOST:PORT")]
    try:
        nodes = cluster_nodes()
        version = ray.__version__
    except Exception as exc:  # a probe that fails is a finding, not a crash of doctor
        return [Check("ray", "fail", f"connected to {where} but probing failed: {exc}",
                      "check that every node has adrs-evolve installed (the probe imports it)")]
    finally:
        if connected_here:
            ray.shutdown()
    cpus = sum(n.cpus for n in nodes)
    gpus = sum(n.gpus for n in nodes)
    checks = [Check("ray", "ok", f"ray {version}: {len(nodes)} node(s), {cpus:g} CPU, "
                                 f"{gpus:g} GPU")]
    for node in nodes:
        custom = "".join(f", {k}={v:g}" for k, v in sorted(node.custom.items()))
        level = "warn" if node.isolation == "rlimits" else "ok"
        checks.append(Check(
            f"node {node.node_id[:8]}", level,
            f"{node.host}: {node.cpus:g} CPU, {node.gpus:g} GPU{custom}; sandbox "
            f"{node.isolation}: {node.description}",
            "install bubblewrap on this node for full isolation" if level == "warn" else ""))
    return checks
