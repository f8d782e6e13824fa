"""``ucloud-images emulator``: serve the local DescribeImage emulator until interrupted."""

from __future__ import annotations

import argparse
from typing import TextIO

from pydantic import SecretStr

from .._errors import InvalidQueryError, UCloudImagesError
from .common import EXIT_OK
from .usage import number

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulator = commands.add_parser("emulator", help="Serve the local DescribeImage emulator until interrupted.")
    emulator.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    emulator.add_argument(
        "--port", type=number(int, 0, 65535), default=8642, help="Port (default 8642; 0 picks a free one)."
    )
    emulator.add_argument("--catalog", metavar="PATH", help="JSON file of images (API spelling) to serve instead.")
    emulator.add_argument("--public-key", metavar="KEY", help="Accepted public key (default: the demo key).")
    emulator.add_argument(
        "--private-key", type=SecretStr, metavar="KEY", help="Its private key (default: the demo key)."
    )
    emulator.add_argument(
        "--latency-ms", type=number(float, 0, 60_000), default=0.0, metavar="MS", help="Delay added to every answer."
    )
    emulator.add_argument(
        "--max-limit", type=number(int, 1), default=None, metavar="N",
        help="Cap applied to Limit (default 1000; 100 with --strict).",
    )
    emulator.add_argument(
        "--strict", action="store_true",
        help="Behave like a plain http.server: headers and body in separate sends, no TCP_NODELAY, backlog 5, "
        "Limit capped at 100, no encoding cache (for honest benchmarks).",
    )
    emulator.add_argument(
        "--fault-rate", type=number(float, 0, 1), default=0.0, metavar="RATE",
        help="Share of requests (0 to 1) answered with a transient fault (153, 150, HTTP 503, dropped connection).",
    )
    emulator.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._emulator.service import serve_forever

    if (args.public_key is None) != (args.private_key is None):
        raise InvalidQueryError("Give --public-key and --private-key together, or neither for the demo pair.")
    if args.public_key == "" or (args.private_key is not None and not args.private_key.get_secret_value()):
        raise InvalidQueryError("--public-key and --private-key must not be empty.")
    keys = {args.public_key: args.private_key.get_secret_value()} if args.public_key else None
    try:
        serve_forever(
            host=args.host,
            port=args.port,
            catalog_path=args.catalog,
            keys=keys,
            latency_ms=args.latency_ms,
            max_limit=args.max_limit,
            fault_rate=args.fault_rate,
            strict=args.strict,
            out=out,
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UCloudImagesError(f"The emulator cannot serve on {args.host}:{args.port}: {reason}.") from None
    return EXIT_OK
