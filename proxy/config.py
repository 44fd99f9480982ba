"""The configuration file (`pricing.yaml`), decoded into typed structs once, at start-up.

Unknown keys, wrong types, negative or non-numeric prices and dangling references stop the
start-up with a message that names the key. Prices are `Decimal` USD per 1M tokens from the
moment they are read, so cost arithmetic never touches a float.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import msgspec.yaml

from proxy.errors import ConfigError

TIERS: tuple[str, ...] = ("simple", "medium", "complex")
AUTO = "auto"

Seconds = Annotated[float, msgspec.Meta(gt=0)]


class Provider(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    adapter: str
    base_url: str
    api_key_env: str | None = None
    headers: dict[str, str] = {}


class Model(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A model clients and tiers refer to by its key; prices in USD per 1M tokens."""

    provider: str
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    upstream: str | None = None
    timeout: Seconds = 60.0


class Tiers(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    simple: list[str]
    medium: list[str]
    complex: list[str]

    def get(self, tier: str) -> list[str]:
        models: list[str] = getattr(self, tier)
        return models


class Thresholds(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Difficulty score cut-offs: score < medium → simple, < complex → medium, else complex."""

    medium: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.10
    complex: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.65


class Ollama(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The optional `ollama` classifier: a small local model asked for the tier."""

    base_url: str = "http://127.0.0.1:11434"
    model: str = "qwen2.5:0.5b"
    timeout_s: Seconds = 2.0


class Router(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`embedding` is the learned classifier (falls back to `rules` if its files are missing)."""

    classifier: Literal["embedding", "rules", "ollama"] = "embedding"
    thresholds: Thresholds = Thresholds()
    ollama: Ollama = Ollama()
    cache_size: Annotated[int, msgspec.Meta(ge=1)] = 4096
    spin: bool = False  # the embedding classifier's threads spin between runs (bench/README.md)


class Server(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    max_body_bytes: Annotated[int, msgspec.Meta(gt=0)] = 8 * 1024 * 1024
    upstream_transport: Literal["aiohttp", "httpx"] = "aiohttp"  # the HTTP client (and pool) for providers


class LedgerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The cost ledger. Postgres when $DATABASE_URL is set, else a SQLite file (README: "Cost ledger").

    path: the SQLite file ($SMR_LEDGER_PATH wins; default $XDG_DATA_HOME/smart-model-router/ledger.sqlite3).
    spill_dir: where rows wait while the database is away (default <data dir>/spill).
    memory_rows: rows kept in memory while the database is away before they are spilled to disk.
    batch_rows: rows per database write. flush_interval: how long the writer lets a batch gather.
    shutdown_timeout: how long shutdown waits for the database before spilling the queue.
    pool_size: Postgres connections.
    """

    path: str | None = None
    spill_dir: str | None = None
    memory_rows: Annotated[int, msgspec.Meta(gt=0)] = 50_000
    batch_rows: Annotated[int, msgspec.Meta(gt=0, le=50_000)] = 1_000
    flush_interval: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.05
    shutdown_timeout: Seconds = 10.0
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 4


Detector = Literal["empty", "refusal", "truncated"]


class Resilience(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What happens when a provider fails (README: "Resilience")."""

    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2  # per deployment, for retryable failures
    backoff_base: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.25  # seconds; doubles each retry, jittered
    backoff_max: Annotated[float, msgspec.Meta(ge=0, le=300)] = 4.0
    max_retry_after: Annotated[float, msgspec.Meta(ge=0, le=600)] = 10.0  # a longer wait skips to the next model
    fallbacks: bool = True  # try the tier's other models
    escalate: bool = True  # then the tiers above
    breaker_failures: Annotated[int, msgspec.Meta(ge=1)] = 5  # consecutive failures that open a breaker
    breaker_cooldown: Annotated[float, msgspec.Meta(gt=0)] = 30.0  # seconds before a half-open probe
    escalate_on: tuple[Detector, ...] = ("empty", "refusal", "truncated")  # non-streamed low-confidence answers
    short_answer_chars: Annotated[int, msgspec.Meta(ge=0)] = 200  # "truncated": length stop below this


class Config(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    providers: dict[str, Provider]
    models: dict[str, Model]
    tiers: Tiers
    baseline: str
    router: Router = Router()
    server: Server = Server()
    ledger: LedgerSettings = LedgerSettings()
    resilience: Resilience = Resilience()


DEFAULT_PATH = Path("pricing.yaml")
EMBEDDED_PATH = Path(__file__).with_name("pricing.yaml")


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """`--config`, else `SMR_CONFIG`, else ./pricing.yaml, else the copy shipped with the package."""
    if explicit:
        return Path(explicit)
    if env.get("SMR_CONFIG"):
        return Path(env["SMR_CONFIG"])
    return DEFAULT_PATH if DEFAULT_PATH.exists() else EMBEDDED_PATH


def load(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror}") from None
    return parse(raw, source=str(path))


def parse(raw: bytes | str, *, source: str = "config") -> Config:
    try:
        tree = msgspec.yaml.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    try:
        config = msgspec.convert(tree, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_locate(tree) or exc}") from None
    _check(config, source)
    return config


_AT = re.compile(r" - at `\$\.?([^`]*)`$")


def _locate(tree: object) -> str | None:
    """msgspec reports `$.models[...].input` for dict values; find which key it was."""
    if not isinstance(tree, dict):
        return None
    for section, kind in (("providers", Provider), ("models", Model)):
        entries = tree.get(section)
        for key, value in entries.items() if isinstance(entries, dict) else ():
            try:
                msgspec.convert(value, kind)
            except msgspec.ValidationError as exc:
                message = str(exc)
                match = _AT.search(message)
                where = f"{section}.{key}" + (f".{match.group(1)}" if match and match.group(1) else "")
                return f"{where}: {_AT.sub('', message)}"
    return None


def _check(config: Config, source: str) -> None:
    problems: list[str] = []
    for name, model in config.models.items():
        if name == AUTO or name in TIERS:
            problems.append(f"models.{name}: {name!r} is reserved for routing; rename the model")
        if model.provider not in config.providers:
            problems.append(f"models.{name}.provider: unknown provider {model.provider!r}")
        for field in ("input", "output", "cached_input"):
            price = getattr(model, field)
            if price is not None and (not price.is_finite() or price < 0):
                problems.append(f"models.{name}.{field}: price must be a number >= 0, got {price}")
        if not math.isfinite(model.timeout):
            problems.append(f"models.{name}.timeout: must be a finite number of seconds")
    for tier in TIERS:
        names = config.tiers.get(tier)
        if not names:
            problems.append(f"tiers.{tier}: list at least one model")
        problems.extend(f"tiers.{tier}: unknown model {m!r}" for m in names if m not in config.models)
    if config.baseline not in config.models:
        problems.append(f"baseline: unknown model {config.baseline!r}")
    for name, provider in config.providers.items():
        if not provider.base_url.startswith(("http://", "https://")):
            problems.append(f"providers.{name}.base_url: must start with http:// or https://")
    thresholds = config.router.thresholds
    if thresholds.medium > thresholds.complex:
        problems.append("router.thresholds: medium must not exceed complex")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
