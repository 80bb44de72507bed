"""Lineage queries over a 10,000-program tree agree with lineage computed from parent links."""

from __future__ import annotations

import random

from db import Archive

N_PROGRAMS = 10_000
CHAIN = 3_000  # a long single line first: deep recursion, then a bushy random tree on top


def _expected_ancestors(parent: dict[int, int | None], node: int) -> list[int]:
    out = []
    while parent[node] is not None:
        node = parent[node]
        out.append(node)
    return out


def test_ancestors_and_descendants_over_ten_thousand_programs(archive_url):
    # The same recursive SQL on both; PostgreSQL gets a tenth of the tree so that 10,000 single
    # transactions over TCP do not dominate the suite (depth is what the queries are about).
    scale = 1 if "://" not in archive_url else 10
    n_programs, chain = N_PROGRAMS // scale, CHAIN // scale
    rng = random.Random(7)
    parent: dict[int, int | None] = {}
    with Archive.open(archive_url) as arch:
        run_id = arch.create_run(problem="p", config_toml="", seed=7, isolation="rlimits")
        ids: list[int] = []
        for i in range(n_programs):
            if not ids:
                par = None
            elif i < chain:
                par = ids[-1]
            else:
                par = rng.choice(ids)
            pid = arch.add_program(run_id, code=f"v = {i}\n", parent_id=par, generation=i)
            parent[pid] = par
            ids.append(pid)
        assert arch.count_programs(run_id) == n_programs

        children: dict[int, list[int]] = {}
        for node, par in parent.items():
            if par is not None:
                children.setdefault(par, []).append(node)

        def expected_descendants(node: int) -> set[int]:
            out, stack = set(), list(children.get(node, []))
            while stack:
                n = stack.pop()
                out.add(n)
                stack.extend(children.get(n, []))
            return out

        deepest = ids[-1]
        for node in (ids[0], ids[chain - 1], ids[chain + 10], deepest, rng.choice(ids)):
            got = arch.ancestors(node)
            assert [p.id for p in got] == _expected_ancestors(parent, node)
            assert [p.id for p in arch.descendants(node)] != [] or not children.get(node)
            assert {p.id for p in arch.descendants(node)} == expected_descendants(node)

        # The root's descendants are everything else, nearest generations first.
        from_root = arch.descendants(ids[0])
        assert len(from_root) == n_programs - 1
        depth = {ids[0]: 0}
        for p in sorted(parent):
            if parent[p] is not None:
                depth[p] = depth[parent[p]] + 1
        assert [depth[p.id] for p in from_root] == sorted(depth[p.id] for p in from_root)
        assert len(arch.ancestors(ids[chain - 1])) == chain - 1
        assert [p.id for p in arch.children(ids[0])] == children[ids[0]]
