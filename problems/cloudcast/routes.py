"""Copy the candidate's routes into plain data, then check every route.

The copy refuses anything but exact dicts, lists/tuples and strings (a subclass could answer
`==` or `hash` differently each time it is asked), so the checks and the simulation see the
same, genuine values. The checks are the ones the leaderboard's evaluator lacks: each route
starts at the source, ends at its destination, uses existing edges and visits no node twice, so
no partition leaves a region that never received it.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from evaluators.harness_api import plain_list
from problems.cloudcast.network import Job
from problems.cloudcast.simulate import EdgeTable, Routes

SHAPE = ("search_algorithm must return a dict {destination: [route of partition 0, ..., route "
         "of partition num_partitions - 1]}, each route a list of region names from the source "
         "to that destination")


class InvalidRoutes(ValueError):
    """The routes break a rule; the message names the job, destination and partition."""


def plain_str(value: Any) -> str:
    """An exact str copy (a str subclass by its genuine value); anything else is refused."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    raise TypeError(f"expected a region name (str), got {type(value).__name__}")


def copy_routes(raw: Any, job: Job, max_nodes: int) -> Routes:
    """The candidate's return value as {destination: [[node, ...] per partition]} of plain
    values; raise InvalidRoutes saying what is wrong and what to return."""
    if type(raw) is not dict:
        raise InvalidRoutes(f"job {job.name}: {SHAPE}; got {type(raw).__name__}")
    items = list(dict.items(raw))
    if len(items) > len(job.dsts):
        extra = [k for k, _ in items if not (isinstance(k, str) and plain_str(k) in job.dsts)]
        raise InvalidRoutes(f"job {job.name}: routes for {len(items)} keys, but the job has "
                            f"{len(job.dsts)} destinations (not a destination: "
                            f"{', '.join(map(repr, extra[:3]))})")
    routes: Routes = {}
    for key, value in items:
        try:
            dst = plain_str(key)
        except TypeError as exc:
            raise InvalidRoutes(f"job {job.name}: a key of the returned dict: {exc}") from None
        where = f"job {job.name}, destination {dst}"
        try:
            per_partition = plain_list(value, lambda route: route, max_len=job.num_partitions)
        except (TypeError, ValueError) as exc:
            raise InvalidRoutes(f"{where}: expected a list of {job.num_partitions} routes (one "
                                f"per partition): {exc}") from None
        copied = []
        for partition, route in enumerate(per_partition):
            try:
                copied.append(plain_list(route, plain_str, max_len=max_nodes))
            except (TypeError, ValueError) as exc:
                raise InvalidRoutes(f"{where}, partition {partition}: the route must be a list "
                                    f"of region names: {exc}") from None
        routes[dst] = copied
    return routes


def check_routes(routes: Routes, job: Job, table: EdgeTable, nodes: frozenset[str]) -> None:
    """Raise InvalidRoutes at the first route that breaks a rule."""
    extra = next((key for key in routes if key not in job.dsts), None)
    if extra is not None:
        raise InvalidRoutes(f"job {job.name}: routes for {extra!r}, which is not a destination "
                            f"of this job (destinations: {', '.join(job.dsts)})")
    for dst in job.dsts:
        if dst not in routes:
            raise InvalidRoutes(f"job {job.name}: no routes for destination {dst}")
        if len(routes[dst]) != job.num_partitions:
            raise InvalidRoutes(f"job {job.name}, destination {dst}: expected "
                                f"{job.num_partitions} routes (one per partition), got "
                                f"{len(routes[dst])}")
        for partition, route in enumerate(routes[dst]):
            problem = route_problem(route, job.src, dst, table, nodes)
            if problem:
                raise InvalidRoutes(f"job {job.name}, destination {dst}, partition {partition}: "
                                    f"{problem}")


def route_problem(route: list[str], src: str, dst: str, table: EdgeTable,
                  nodes: frozenset[str]) -> str | None:
    """What is wrong with one route, or None."""
    if len(route) < 2:
        return f"the route {route} has fewer than two regions"
    unknown = next((node for node in route if node not in nodes), None)
    if unknown is not None:
        return f"{unknown!r} is not a region of the network"
    if route[0] != src:
        return f"the route starts at {route[0]}, not at the source {src}"
    if route[-1] != dst:
        return f"the route ends at {route[-1]}, not at the destination {dst}"
    seen: set[str] = set()
    for node in route:
        if node in seen:
            return f"the route visits {node} twice"
        seen.add(node)
    for u, v in pairwise(route):
        if (u, v) not in table:
            return f"the route uses the edge {u} -> {v}, which does not exist"
    return None
