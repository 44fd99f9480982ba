"""What `/v1/stats` and `smr stats` report: totals, savings and latency over a time window.

The Postgres store aggregates in SQL; the SQLite store reads the window's rows and calls
`aggregate` here. Money is `Decimal` throughout and leaves as exact fixed-point JSON numbers (`proxy.records.to_json`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

ZERO = Decimal(0)
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Group(msgspec.Struct, kw_only=True):
    requests: int = 0
    cost_usd: Decimal = ZERO
    baseline_cost_usd: Decimal = ZERO
    savings_usd: Decimal = ZERO


class Latency(msgspec.Struct, kw_only=True):
    p50: float | None = None
    p95: float | None = None


class Stats(msgspec.Struct, kw_only=True):
    object: str = "stats"
    since: datetime | None = None
    until: datetime | None = None
    requests: int = 0
    errors: int = 0
    estimated: int = 0  # rows whose token counts are a tiktoken estimate
    cost_usd: Decimal = ZERO
    baseline_cost_usd: Decimal = ZERO
    savings_usd: Decimal = ZERO
    savings_pct: float | None = None
    latency_ms: Latency = msgspec.field(default_factory=Latency)  # answered requests only
    by_tier: dict[str, Group] = msgspec.field(default_factory=dict)
    by_model: dict[str, Group] = msgspec.field(default_factory=dict)


class Row(msgspec.Struct, array_like=True):
    """The columns a stats query reads from each row."""

    tier: str | None
    model: str | None
    status: str
    usage_estimated: bool
    cost_usd: Decimal | None
    baseline_cost_usd: Decimal | None
    latency_ms: float
    attempt: int = 0  # rows of earlier attempts add their cost, not a request


def parse_window(text: str) -> timedelta:
    """`30m`, `24h`, `7d`, `2w` as a duration; a `ValueError` naming the format otherwise."""
    match = _WINDOW.match(text)
    if not match:
        raise ValueError(f"window {text!r}: use a number and a unit, like 90s, 30m, 24h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def percentile(ordered: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as Postgres' `percentile_cont`."""
    if not ordered:
        return None
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def finish(stats: Stats) -> Stats:
    """Fill the derived fields (savings, percentages) from the sums."""
    stats.savings_usd = stats.baseline_cost_usd - stats.cost_usd
    for group in (*stats.by_tier.values(), *stats.by_model.values()):
        group.savings_usd = group.baseline_cost_usd - group.cost_usd
    if stats.baseline_cost_usd > 0:
        stats.savings_pct = round(float(stats.savings_usd / stats.baseline_cost_usd * 100), 2)
    return stats


def _add(group: Group, row: Row) -> None:
    group.requests += row.attempt == 0
    group.cost_usd += row.cost_usd or ZERO
    group.baseline_cost_usd += row.baseline_cost_usd or ZERO


def aggregate(rows: Iterable[Row], since: datetime | None, until: datetime | None) -> Stats:
    stats = Stats(since=since, until=until)
    latencies: list[float] = []
    for row in rows:
        stats.cost_usd += row.cost_usd or ZERO
        stats.baseline_cost_usd += row.baseline_cost_usd or ZERO
        if row.attempt == 0:
            stats.requests += 1
            stats.errors += row.status != "ok"
            stats.estimated += row.usage_estimated
            if row.status == "ok":
                latencies.append(row.latency_ms)
        _add(stats.by_tier.setdefault(row.tier or "none", Group()), row)
        _add(stats.by_model.setdefault(row.model or "none", Group()), row)
    latencies.sort()
    stats.latency_ms = Latency(p50=percentile(latencies, 0.5), p95=percentile(latencies, 0.95))
    return finish(stats)


def table(stats: Stats) -> str:
    """The stats as a plain-text table, for `smr stats`."""
    window = f"{stats.since.isoformat() if stats.since else 'the beginning'} → {stats.until or 'now'}"
    pct = f"{stats.savings_pct:.2f}%" if stats.savings_pct is not None else "n/a"
    p50 = f"{stats.latency_ms.p50:.1f}" if stats.latency_ms.p50 is not None else "n/a"
    p95 = f"{stats.latency_ms.p95:.1f}" if stats.latency_ms.p95 is not None else "n/a"
    lines = [
        f"window       {window}",
        f"requests     {stats.requests}  (errors {stats.errors}, estimated usage {stats.estimated})",
        f"cost         ${stats.cost_usd:.6f}",
        f"baseline     ${stats.baseline_cost_usd:.6f}",
        f"savings      ${stats.savings_usd:.6f}  ({pct})",
        f"latency ms   p50 {p50}  p95 {p95}",
    ]
    for title, groups in (("tier", stats.by_tier), ("model", stats.by_model)):
        width = max([len(title), *map(len, groups)])
        lines += ["", f"{title:<{width}}  {'requests':>8}  {'cost_usd':>14}  {'baseline_usd':>14}  {'savings_usd':>14}"]
        for name, g in sorted(groups.items(), key=lambda item: -item[1].requests):
            lines.append(
                f"{name:<{width}}  {g.requests:>8}  {g.cost_usd:>14.6f}  {g.baseline_cost_usd:>14.6f}"
                f"  {g.savings_usd:>14.6f}"
            )
    return "\n".join(lines)
