"""Selection: which program a proposal starts from (islands, elites, MAP-Elites: `sampler`) and
which operator makes it (the cost-aware bandit over (model, mutation) arms: `bandit`)."""
