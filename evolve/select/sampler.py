"""Islands, migration, parent selection, the elite archive, inspirations and MAP-Elites.

Determinism: nothing here reads a clock or a global RNG; every choice takes the caller's
`random.Random`, and every ordering breaks ties by the program's sequence number (`seq`, fixed by
the proposal order), never by its database id (which depends on commit timing).

Islands really separate: a child always joins the island it was proposed on (its parent's),
and programs reach another island only by migration, which adds membership (no copy rows) and is
reported so the controller records it as an event.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

from evolve.config import IslandsConfig, SamplingConfig


@dataclass
class Member:
    """What the sampler knows about one committed program."""

    seq: int                     # proposal sequence number; -1 for the initial program
    program_id: int
    island: int                  # home island (where it was proposed)
    score: float | None
    valid: bool
    generation: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    children: int = 0
    repaired: bool = False       # an invalid program that a repair was already proposed for

    @property
    def sort_key(self) -> tuple[float, int]:
        """Best first: higher score, then earlier sequence number."""
        return (-(self.score if self.score is not None else -math.inf), self.seq)


@dataclass(frozen=True)
class Migration:
    program_seq: int
    program_id: int
    source: int
    target: int


def _pstdev(scores: list[float]) -> float:
    """The population standard deviation in floats: `statistics.pstdev` computes it exactly
    with fractions, whose cost grows with the island, on the event loop's thread. `fsum` rounds
    once, so the figure depends only on the scores (same seed, same archive, same choices)."""
    mean = math.fsum(scores) / len(scores)
    return math.sqrt(math.fsum((x - mean) ** 2 for x in scores) / len(scores))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class IslandSampler:
    def __init__(self, sampling: SamplingConfig, islands: IslandsConfig,
                 features: list[str] | tuple[str, ...] = ()):
        self.cfg = sampling
        self.islands_cfg = islands
        self.k = islands.count
        self.features = list(features)
        self.members: dict[int, Member] = {}              # by seq
        self.island_members: list[list[int]] = [[] for _ in range(self.k)]  # seqs, in join order
        self.ingested = 0                                  # non-initial programs added
        self.migrations: list[Migration] = []
        self._elite: list[int] = []                        # seqs, best first
        self._grid: dict[tuple[int, ...], int] | None = None  # MAP-Elites cell -> seq
        self._valid_cache: dict[int, list[Member]] = {}   # island -> valid members, best first
        self._score_stats: dict[int, tuple[list[Member], float, float]] = {}

    # ------------------------------------------------------------ adding programs
    def add_initial(self, member: Member) -> None:
        """The initial program seeds every island."""
        self.members[member.seq] = member
        for island in range(self.k):
            self.island_members[island].append(member.seq)
        self._valid_cache.clear()
        self._update_elite(member)

    def island_for(self, seq: int) -> int:
        """Proposals cycle over the islands so that every island evolves at the same pace."""
        return seq % self.k

    def add(self, member: Member, parent_seq: int | None,
            extra_parent_seqs: tuple[int, ...] = ()) -> list[Migration]:
        """Ingest a committed program (in sequence order); returns migrations it triggered."""
        self.members[member.seq] = member
        self.island_members[member.island].append(member.seq)
        self._valid_cache.pop(member.island, None)
        for seq in (parent_seq, *extra_parent_seqs):
            if seq is not None and seq in self.members:
                self.members[seq].children += 1
        self._update_elite(member)
        self.ingested += 1
        interval = self.islands_cfg.migration_interval * self.k
        if self.k > 1 and self.islands_cfg.migration_rate > 0 and self.ingested % interval == 0:
            return self._migrate()
        return []

    def _update_elite(self, member: Member) -> None:
        if not member.valid or member.score is None:
            return
        self._elite.append(member.seq)
        self._elite.sort(key=lambda s: self.members[s].sort_key)
        del self._elite[self.cfg.elite_archive_size:]
        self._grid = None  # MAP-Elites ranges may change

    def _migrate(self) -> list[Migration]:
        """Ring migration: each island sends its best `rate` share (at least one) to the next."""
        moved: list[Migration] = []
        snapshot = [self.valid_members(i) for i in range(self.k)]
        for source in range(self.k):
            valid = snapshot[source]
            if not valid:
                continue
            count = max(1, round(self.islands_cfg.migration_rate * len(valid)))
            target = (source + 1) % self.k
            present = set(self.island_members[target])
            for member in valid[:count]:
                if member.seq not in present:
                    self.island_members[target].append(member.seq)
                    self._valid_cache.pop(target, None)
                    moved.append(Migration(member.seq, member.program_id, source, target))
        self.migrations.extend(moved)
        return moved

    # ------------------------------------------------------------ views
    def valid_members(self, island: int) -> list[Member]:
        """Valid members of an island, best first (cached until the island changes; callers
        must not modify the list)."""
        cached = self._valid_cache.get(island)
        if cached is None:
            pool = [self.members[s] for s in self.island_members[island]]
            cached = sorted((m for m in pool if m.valid and m.score is not None),
                            key=lambda m: m.sort_key)
            self._valid_cache[island] = cached
        return cached

    def best(self, island: int | None = None) -> Member | None:
        pool = self.valid_members(island) if island is not None else \
            [self.members[s] for s in self._elite]
        return pool[0] if pool else None

    def elite(self) -> list[Member]:
        return [self.members[s] for s in self._elite]

    # ------------------------------------------------------------ parent selection
    def select_parent(self, island: int, rng: random.Random) -> Member:
        valid = self.valid_members(island)
        if not valid:  # nothing valid yet: the most recent program (repair will be used)
            return self.members[self.island_members[island][-1]]
        method = self.cfg.parent_selection
        if method == "hill_climbing" or len(valid) == 1:
            return valid[0]
        if method == "uniform":
            return valid[rng.randrange(len(valid))]
        if method == "power_law":
            weights = [(rank + 1) ** -self.cfg.power_law_alpha for rank in range(len(valid))]
        else:
            weights = self.weighted_weights(valid)
        return rng.choices(valid, weights=weights, k=1)[0]

    def weighted_weights(self, valid: list[Member]) -> list[float]:
        """sigmoid(sharpness * (score - median) / spread) * 1 / (1 + children)."""
        # `valid` is the cached list of an unchanged island, so its statistics are computed
        # once per version of the island.
        known = self._score_stats.get(id(valid))
        if known is not None and known[0] is valid:
            median, spread = known[1], known[2]
        else:
            scores = [m.score for m in valid if m.score is not None]
            median = statistics.median(scores)
            spread = _pstdev(scores) or 1.0
            if len(self._score_stats) > 256:
                self._score_stats.clear()
            self._score_stats[id(valid)] = (valid, median, spread)
        sharp = self.cfg.weighted_sharpness
        return [_sigmoid(sharp * ((m.score or 0.0) - median) / spread) / (1 + m.children)
                for m in valid]

    def select_repair_target(self, island: int, rng: random.Random) -> Member | None:
        """A recent invalid program of the island that no repair was proposed for yet."""
        pool = [self.members[s] for s in self.island_members[island][-20:]]
        invalid = [m for m in pool if not m.valid and not m.repaired and m.seq >= 0]
        return invalid[rng.randrange(len(invalid))] if invalid else None

    def second_parent(self, island: int, parent: Member, rng: random.Random) -> Member | None:
        """The crossover mate: another valid program of the island, else an elite."""
        pool = [m for m in self.valid_members(island) if m.seq != parent.seq]
        if not pool:
            pool = [m for m in self.elite() if m.seq != parent.seq]
        return pool[rng.randrange(len(pool))] if pool else None

    # ------------------------------------------------------------ inspirations
    def inspirations(self, island: int, parent: Member, rng: random.Random,
                     second: Member | None = None) -> list[Member]:
        """Top programs of the island plus diverse ones (MAP-Elites cells or random elites);
        never the parent, nor crossover's second parent (shown once, as Parent B)."""
        shown = {parent.seq} | ({second.seq} if second is not None else set())
        valid = [m for m in self.valid_members(island) if m.seq not in shown]
        top = valid[:self.cfg.inspirations_top]
        chosen = {m.seq for m in top} | shown
        if self.cfg.map_elites and self.features:
            pool = [self.members[s] for s in sorted(self.grid().values())]
        else:
            pool = valid[len(top):] + self.elite()
        seen: set[int] = set()
        unique = [m for m in pool if m.seq not in chosen and not (m.seq in seen or seen.add(m.seq))]
        diverse = rng.sample(unique, k=min(self.cfg.inspirations_diverse, len(unique)))
        return top + sorted(diverse, key=lambda m: m.sort_key)

    # ------------------------------------------------------------ MAP-Elites
    def grid(self) -> dict[tuple[int, ...], int]:
        """Best program (seq) per cell of the feature grid, over all valid programs."""
        if self._grid is not None:
            return self._grid
        rows = [m for m in self.members.values() if m.valid and m.score is not None
                and all(isinstance(m.metrics.get(f), int | float) for f in self.features)]
        bins = self.cfg.map_elites_bins
        lows = {f: min((float(m.metrics[f]) for m in rows), default=0.0) for f in self.features}
        highs = {f: max((float(m.metrics[f]) for m in rows), default=1.0) for f in self.features}
        grid: dict[tuple[int, ...], int] = {}
        for m in sorted(rows, key=lambda m: m.seq):
            cell = tuple(self._bin(float(m.metrics[f]), lows[f], highs[f], bins)
                         for f in self.features)
            current = grid.get(cell)
            if current is None or m.sort_key < self.members[current].sort_key:
                grid[cell] = m.seq
        self._grid = grid
        return grid

    @staticmethod
    def _bin(value: float, low: float, high: float, bins: int) -> int:
        if not math.isfinite(value) or high <= low:
            return 0
        return min(bins - 1, int((value - low) / (high - low) * bins))

    # ------------------------------------------------------------ reporting
    def island_stats(self) -> list[dict[str, Any]]:
        stats = []
        for island in range(self.k):
            valid = self.valid_members(island)
            stats.append({"island": island, "members": len(self.island_members[island]),
                          "valid": len(valid),
                          "best_score": valid[0].score if valid else None,
                          "best_seq": valid[0].seq if valid else None})
        return stats

    def state_dict(self) -> dict[str, Any]:
        """A snapshot for the archive and the dashboard (the sampler is rebuilt by replay)."""
        return {"islands": [list(m) for m in self.island_members],
                "ingested": self.ingested,
                "elite": list(self._elite),
                "migrations": len(self.migrations),
                "grid_cells": len(self.grid()) if self.cfg.map_elites and self.features else 0}
