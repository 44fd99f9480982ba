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

    from proxy.app import create_app

    path = configuration.config_path(args.config, os.environ)
    config = configuration.load(path)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    print(f"smr: serving {path} on http://{host}:{port}/v1", file=sys.stderr)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="auto",
        http="auto",
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
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
