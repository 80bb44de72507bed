"""Shared simulator of the spot-instance problems ("Can't Be Late", NSDI '24).

`traces` loads the availability data, `state` defines what a policy sees, `simulate` runs one
scenario tick by tick (with the environment's deadline guard), `optimum` computes the
omniscient optimum by dynamic programming, `grids` names the evaluation scenarios and
`evaluation` turns runs into a score.
"""

NONE, SPOT, ON_DEMAND = 0, 1, 2
ACTION_NAMES = {NONE: "NONE", SPOT: "SPOT", ON_DEMAND: "ON_DEMAND"}
ON_DEMAND_PRICE = 3.06        # $/h, both problems
SINGLE_SPOT_PRICE = 0.9731    # $/h, one region (on-demand / spot is about 3.14)
