"""Run a policy (dispatch and optional migrate) over a list of scenarios."""

from __future__ import annotations

from collections.abc import Callable

from problems.serving.cluster import DEFAULT_CONFIG, Cluster, ClusterConfig
from problems.serving.scenarios import Scenario, pooled_config
from problems.serving.scoring import Figures, figures


def simulate(scenario: Scenario, dispatch: Callable, migrate: Callable | None = None,
             config: ClusterConfig = DEFAULT_CONFIG) -> Figures:
    return figures(Cluster(scenario.workload, config).run(dispatch, migrate))


def _pooled(_request, _instances):
    return 0


def bound(scenario: Scenario, config: ClusterConfig = DEFAULT_CONFIG) -> Figures:
    return figures(Cluster(scenario.workload, pooled_config(config)).run(_pooled))
