"""Money leaves the proxy as exact fixed-point JSON numbers: no floats, no exponents."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from proxy.ledger.stats import Group, Stats
from proxy.records import LogLedger, RequestRecord, to_json


def test_small_and_odd_decimals_are_written_as_plain_digits() -> None:
    text = to_json(
        {"tiny": Decimal("4.9E-7"), "cents": Decimal("12.50"), "zero": Decimal("0E-10"), "big": Decimal("1E+2")}
    ).decode()
    assert text == '{"tiny":0.00000049,"cents":12.5,"zero":0,"big":100}'
    assert json.loads(text, parse_float=Decimal)["tiny"] == Decimal("4.9E-7")  # the same value, exactly


def test_stats_with_sub_micro_dollar_costs_have_no_exponent() -> None:
    stats = Stats(requests=1, cost_usd=Decimal("3.1E-8"), baseline_cost_usd=Decimal("6.2E-7"))
    stats.savings_usd = stats.baseline_cost_usd - stats.cost_usd
    stats.by_model["cheap"] = Group(requests=1, cost_usd=Decimal("3.1E-8"))
    text = to_json(stats).decode()
    assert "E" not in text and "e-" not in text
    parsed = json.loads(text, parse_float=Decimal)
    assert parsed["savings_usd"] == Decimal("0.000000589") and parsed["by_model"]["cheap"]["cost_usd"] == Decimal(
        "3.1E-8"
    )


def test_log_ledger_rows_are_json_lines_with_exact_cost(caplog: pytest.LogCaptureFixture) -> None:
    row = RequestRecord(id="r1", created_at=datetime(2026, 11, 21, tzinfo=UTC), cost_usd=Decimal("7E-7"))
    with caplog.at_level(logging.INFO, logger="smr.requests"):
        LogLedger().record(row)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "smr.requests"]
    logged = json.loads(line, parse_float=Decimal)
    assert logged["id"] == "r1" and logged["cost_usd"] == Decimal("0.0000007") and "E-" not in line
    assert logged["created_at"] == "2026-11-21T00:00:00Z"
