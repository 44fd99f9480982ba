"""`smr`: the command line. Each sub-command parses its flags and calls into the package."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from proxy import config as configuration
from proxy.errors import ConfigError


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from proxy import serving
    from proxy.app import create_app

    path = configuration.config_path(args.config, os.environ)
    config = configuration.load(path)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    print(f"smr: serving {path} on http://{host}:{port}/v1", file=sys.stderr)
    uvicorn.Server(serving.config(app, host, port, log_level=args.log_level, timeout_graceful_shutdown=10)).run()
    return 0


def _stats(args: argparse.Namespace) -> int:
    import asyncio

    from proxy.errors import RouterError
    from proxy.ledger import read_stats
    from proxy.ledger.stats import table
    from proxy.records import to_json
    from proxy.stats import window

    config = configuration.load(configuration.config_path(args.config, os.environ))
    try:
        since, until = window(args.since, args.until, args.window)
        stats = asyncio.run(read_stats(config.ledger, os.environ, since, until))
    except RouterError as exc:
        print(f"smr: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        print(to_json(stats).decode())
    else:
        print(table(stats))
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import msgspec

    from proxy.classify import registry
    from proxy.classify.datasets import DataError, load_rows
    from proxy.classify.evaluate import evaluate, render

    config = configuration.load(configuration.config_path(args.config, os.environ))
    settings = config.router
    if args.classifier:
        settings = msgspec.structs.replace(settings, classifier=args.classifier)
    try:
        rows = load_rows(Path(args.file))
        report = evaluate(registry.make(settings), rows, settings.thresholds)
    except DataError as exc:
        print(f"smr eval: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report) if args.json else render(report))
    return 0


def _train(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from proxy.classify.train import train

    root = Path(args.root).resolve()
    meta = train(root, Path(args.shared) if args.shared else root.parent / "shared" / "data", export=not args.no_export)
    print(json.dumps({"thresholds": meta["thresholds"], "metrics": meta["metrics"]}, indent=2))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smr", description="smart-model-router: route, forward, count.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", help="config file (default: $SMR_CONFIG, else ./pricing.yaml)")
    serve.add_argument("--host", help="address to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8000)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(run=_serve)
    evaluate = commands.add_parser("eval", help="score a labelled JSONL file and report routing quality")
    evaluate.add_argument("file", help="JSONL: messages + tier, or messages + score_strong + score_weak")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    evaluate.add_argument("--config", help="config file for the classifier and thresholds")
    evaluate.add_argument("--classifier", choices=["embedding", "rules", "ollama"], help="override router.classifier")
    evaluate.set_defaults(run=_eval)
    train = commands.add_parser("train", help="rebuild the classifier files (needs the [train] extra)")
    train.add_argument("--root", default=".", help="repository root with data/tiers (default: .)")
    train.add_argument("--shared", help="public data directory (default: ROOT/../shared/data)")
    train.add_argument("--no-export", action="store_true", help="reuse the existing model.onnx")
    train.set_defaults(run=_train)
    stats = commands.add_parser("stats", help="cost and savings from the ledger ($DATABASE_URL, else the SQLite file)")
    stats.add_argument("--config", help="config file, for its ledger section (default: as serve)")
    stats.add_argument("--window", help="only the last 90s, 30m, 24h, 7d, 2w, ...")
    stats.add_argument("--since", help="only requests at or after this ISO 8601 time (UTC unless it has an offset)")
    stats.add_argument("--until", help="only requests before this ISO 8601 time")
    stats.add_argument("--json", action="store_true", help="print what GET /v1/stats answers")
    stats.set_defaults(run=_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"smr: {exc.message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
