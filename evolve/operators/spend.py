"""Hard LLM budgets: every call reserves its worst-case cost before it starts.

A call's worst case is its prompt's tokens at the model's input price plus `max_tokens` at its
output price. A call starts only if the spend so far, plus every reservation still open, plus its
own worst case stays within `budget.max_usd`; when it ends, its reservation is replaced by its
real cost (or kept whole when the provider reported no usage). So however many proposals are in
flight, the spend passes the budget by at most one call's worst case (the real cost of a call
whose provider under-reported what it would charge; with correct prices, not at all).

A call that does not fit while others are in flight waits for them to end (`reserve_when_room`):
real costs are usually far below the worst cases, and a run that stopped at the first call that
did not fit would leave most of its budget unspent. The budget is reached only when nothing is
in flight and the next call's worst case would still cross it.

A model without a known price cannot be held to a dollar budget: its calls are counted against
`budget.max_calls` when that is set, and the run says so once.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evolve.config import BudgetConfig, PriceConfig


class BudgetRefused(Exception):
    """This call would cross a budget; nothing was sent. `may_free`: calls in flight hold part
    of the dollar budget, so waiting for them may make room (the call budget never frees)."""

    def __init__(self, message: str, *, may_free: bool = False) -> None:
        super().__init__(message)
        self.may_free = may_free


@dataclass
class Reservation:
    id: int
    model: str
    worst_usd: float | None   # None = price unknown


@dataclass
class SpendLedger:
    budget: BudgetConfig
    unit_prices: Callable[[str], tuple[float, float] | None]  # USD per token (in, out)
    spent_usd: float = 0.0     # settled, known prices
    calls: int = 0             # calls started (every purpose, every attempt)
    warn: Callable[[str, dict[str, Any]], None] = lambda _m, _d: None
    _open: dict[int, float] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=itertools.count)
    _warned: set[str] = field(default_factory=set)
    _settled: asyncio.Event | None = None   # set (and replaced) whenever a call ends

    @property
    def reserved_usd(self) -> float:
        return sum(self._open.values())

    def worst_case(self, model: str, prompt_tokens: int, max_tokens: int) -> float | None:
        prices = self.unit_prices(model)
        if prices is None:
            return None
        return prompt_tokens * prices[0] + max_tokens * prices[1]

    def reserve(self, model: str, prompt_tokens: int, max_tokens: int) -> Reservation:
        """Reserve a call's worst case, or raise `BudgetRefused` (nothing reserved then)."""
        budget = self.budget
        if budget.max_calls is not None and self.calls >= budget.max_calls:
            raise BudgetRefused(f"the call budget of {budget.max_calls} LLM calls is used up")
        worst = self.worst_case(model, prompt_tokens, max_tokens)
        if budget.max_usd is not None:
            if worst is None:
                self._warn_unpriced(model)
            elif self.spent_usd + self.reserved_usd + worst > budget.max_usd:
                raise BudgetRefused(
                    f"a call to {model} could cost up to ${worst:.4f} ({prompt_tokens} prompt "
                    f"tokens + {max_tokens} max_tokens), and ${self.spent_usd:.4f} is spent and "
                    f"${self.reserved_usd:.4f} reserved of the ${budget.max_usd:g} budget",
                    may_free=bool(self._open))
        self.calls += 1
        reservation = Reservation(next(self._ids), model, worst)
        if worst is not None:
            self._open[reservation.id] = worst
        return reservation

    async def reserve_when_room(self, model: str, prompt_tokens: int,
                                max_tokens: int) -> Reservation:
        """`reserve`, waiting while calls in flight hold the room this one needs; raises
        `BudgetRefused` once nothing is in flight and it still does not fit."""
        while True:
            try:
                return self.reserve(model, prompt_tokens, max_tokens)
            except BudgetRefused as exc:
                if not exc.may_free:
                    raise
            # No await between the refusal and taking the event: no settle can slip between.
            if self._settled is None:
                self._settled = asyncio.Event()
            await self._settled.wait()

    def settle(self, reservation: Reservation, cost_usd: float | None) -> None:
        """The call ended: its real cost replaces the reservation (unknown cost: the worst
        case stays counted, since the provider may still bill it)."""
        worst = self._open.pop(reservation.id, None)
        if cost_usd is not None:
            self.spent_usd += cost_usd
        elif worst is not None:
            self.spent_usd += worst
        if self._settled is not None:  # wake the calls waiting for room
            self._settled.set()
            self._settled = None

    def _warn_unpriced(self, model: str) -> None:
        if model in self._warned:
            return
        self._warned.add(model)
        limit = (f"its calls count against budget.max_calls ({self.budget.max_calls})"
                 if self.budget.max_calls is not None else
                 "set budget.max_calls to bound them")
        self.warn(f"the price of {model} is unknown, so the dollar budget cannot hold its calls: "
                  f"{limit}; or set llm.prices.\"{model}\" (USD per million tokens)",
                  {"model": model})


def price_for(model: str, prices: dict[str, PriceConfig]) -> PriceConfig | None:
    """The configured price of `model`, tried with and without its provider prefix."""
    if model in prices:
        return prices[model]
    bare = model.split("/", 1)[1] if "/" in model else model
    return prices.get(bare)


def unit_prices_from(prices: dict[str, PriceConfig],
                     lookup: Callable[[str], dict[str, Any] | None]) -> Callable[
                         [str], tuple[float, float] | None]:
    """USD per token (input, output) of a model: the config's table, then `lookup` (litellm's
    model info); None when neither knows it."""
    def unit(model: str) -> tuple[float, float] | None:
        price = price_for(model, prices)
        if price is not None:
            return price.input_per_mtok / 1e6, price.output_per_mtok / 1e6
        info = lookup(model) or {}
        cin, cout = info.get("input_cost_per_token"), info.get("output_cost_per_token")
        if cin is None or cout is None or (not cin and not cout):
            return None
        return float(cin), float(cout)

    return unit
