"""Deciding where a request goes. Pure: names and numbers in, a `Route` out.

`model` in the request means: `auto` → the classifier's score picks the tier; `simple`,
`medium`, `complex` → that tier; a configured model name → that model, no routing.
"""

from __future__ import annotations

import msgspec

from proxy.classify import Scored
from proxy.config import AUTO, TIERS, Config, Thresholds
from proxy.errors import ModelNotFound


class Route(msgspec.Struct, frozen=True):
    tier: str | None  # None when the client named a model
    models: tuple[str, ...]  # the first is preferred, the rest are fallbacks
    reason: str
    score: float | None = None


def needs_score(requested: str) -> bool:
    return requested == AUTO


def tier_for(score: float, thresholds: Thresholds) -> str:
    if score >= thresholds.complex:
        return "complex"
    if score >= thresholds.medium:
        return "medium"
    return "simple"


def route(requested: str, config: Config, scored: Scored | None = None) -> Route:
    if requested == AUTO:
        if scored is None:
            raise TypeError("model 'auto' needs a classifier score")
        tier = tier_for(scored.score, config.router.thresholds)
        return Route(tier, tuple(config.tiers.get(tier)), f"{scored.reason}; score {scored.score:.2f}", scored.score)
    if requested in TIERS:
        return Route(requested, tuple(config.tiers.get(requested)), "tier requested")
    if requested in config.models:
        return Route(None, (requested,), "model requested")
    raise ModelNotFound(
        f"The model {requested!r} does not exist here. Use 'auto', a tier (simple, medium, complex) "
        f"or one of: {', '.join(config.models)}.",
        param="model",
    )
