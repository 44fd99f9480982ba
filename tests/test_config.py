"""The config decodes into typed structs, and every mistake stops start-up naming its key."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from proxy import config as configuration
from proxy.app import create_app
from proxy.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
providers:
  openai: {adapter: openai, base_url: https://api.openai.com/v1, api_key_env: OPENAI_API_KEY}
models:
  small: {provider: openai, input: 0.15, output: 0.60, cached_input: 0.075}
  big: {provider: openai, input: 2.50, output: 10.00, upstream: gpt-4o-2024-08-06, timeout: 60}
tiers:
  simple: [small]
  medium: [small, big]
  complex: [big]
baseline: big
"""


def test_shipped_pricing_yaml_loads_with_exact_prices() -> None:
    config = configuration.load(ROOT / "pricing.yaml")
    assert config.baseline in config.models
    gpt4o = config.models["gpt-4o"]
    assert gpt4o.input == Decimal("2.50") and gpt4o.output == Decimal("10.00")
    assert gpt4o.upstream == "gpt-4o-2024-08-06"
    for tier in configuration.TIERS:
        assert config.tiers.get(tier)
    create_app(config, env={})  # every adapter it names exists


def test_the_embedded_copy_is_the_root_file() -> None:
    assert configuration.EMBEDDED_PATH.read_bytes() == (ROOT / "pricing.yaml").read_bytes()


def test_good_config_decodes_to_typed_structs() -> None:
    config = configuration.parse(GOOD)
    assert config.models["small"].cached_input == Decimal("0.075")
    assert config.models["big"].timeout == 60
    assert config.models["small"].timeout == 60.0  # default
    assert config.tiers.medium == ["small", "big"]
    assert config.router.thresholds.medium < config.router.thresholds.complex


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("baseline: big", "baseline: big\ncolour: blue"), "colour"),
        (("timeout: 60}", "timeout: 60, tmeout: 3}"), "tmeout"),
        (("input: 2.50", "input: -1"), "models.big.input"),
        (("input: 2.50", "input: lots"), "models.big.input: Invalid decimal"),
        (("input: 2.50", "input: .nan"), "models.big.input"),
        (("timeout: 60", "timeout: 0"), "models.big.timeout"),
        (("simple: [small]", "simple: [smol]"), "tiers.simple: unknown model 'smol'"),
        (("simple: [small]", "simple: []"), "tiers.simple"),
        (("baseline: big", "baseline: huge"), "baseline"),
        (("{provider: openai, input: 0.15", "{provider: opnai, input: 0.15"), "models.small.provider"),
        (("base_url: https://api.openai.com/v1", "base_url: api.openai.com"), "base_url"),
        (("  small:", "  auto:"), "models.auto"),
    ],
)
def test_mistakes_stop_startup_naming_the_key(change: tuple[str, str], named: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ConfigError) as caught:
        configuration.parse(text)
    assert named in caught.value.message


def test_unknown_adapter_is_named() -> None:
    config = configuration.parse(GOOD.replace("adapter: openai", "adapter: cohere"))
    with pytest.raises(ConfigError, match=r"providers\.openai\.adapter: unknown adapter .cohere."):
        create_app(config, env={})


def test_config_path_precedence(tmp_path: Path) -> None:
    assert configuration.config_path("x.yaml", {"SMR_CONFIG": "y.yaml"}) == Path("x.yaml")
    assert configuration.config_path(None, {"SMR_CONFIG": "y.yaml"}) == Path("y.yaml")


def test_smr_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("input: 2.50", "input: -2"))
    run = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SMR_CONFIG": ""},
    )
    assert run.returncode == 2
    assert "models.big.input" in run.stderr


def test_smr_serve_names_a_missing_file(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "proxy", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SMR_CONFIG": str(tmp_path / "nope.yaml")},
    )
    assert run.returncode == 2
    assert "nope.yaml" in run.stderr
