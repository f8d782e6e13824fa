"""The plugin's process: the schema at once, the provider loaded behind it.

``pulumi-resource-ucloud-images <engine-address>`` listens on a free loopback port and prints it on stdout, as
the engine expects. The engine's first call is often the only one (a language host starts the plugin just for
its schema), so the process answers ``GetSchema`` and ``GetPluginInfo`` from the shipped ``schema.json`` and the
version, with nothing imported but gRPC and protobuf, and loads the provider (the Pulumi SDK, pydantic,
requests: most of the start-up time) on a thread as soon as the port is out. Any other call waits for that load
and is then served by :mod:`._provider`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import wrappers_pb2

from ._version import __version__

__all__ = ["SCHEMA_FILE", "SERVER_OPTIONS", "SERVICE", "main", "plain_string_answer"]

SERVICE = "pulumirpc.ResourceProvider"
SCHEMA_FILE = Path(__file__).with_name("schema.json")
"""The schema the plugin serves: the package's copy of ``schema.json`` (``_schema.SERVED_SCHEMA_PATH``, which
``_schema --write`` writes and ``--check`` checks); named here too so that serving it imports no model."""

SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 400 * 1024 * 1024),
    ("grpc.server_max_unrequested_time_in_server", 30 * 60),
]
"""The gRPC options the Pulumi SDK serves its plugins with (its ``_grpc_settings``), written out here because
importing the SDK is what this module puts off; a test keeps them equal to the SDK's."""


def plain_string_answer(text: str) -> bytes:
    """A ``GetSchemaResponse`` (``string schema = 1``) or a ``PluginInfo`` (``string version = 1``), encoded.

    Protobuf messages with the same field numbers and types are the same bytes on the wire, and
    ``google.protobuf.StringValue`` is ``string value = 1``; a test checks this against Pulumi's own messages.
    """
    return wrappers_pb2.StringValue(value=text).SerializeToString()


def _load_provider(engine: str) -> grpc.GenericRpcHandler:
    """The full plugin: the SDK's servicer around :class:`._provider.UCloudImagesProvider`, as one gRPC handler."""
    from ._provider import handler

    return handler(engine)


class _StartingHandler(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no types
    """Serves the schema and the version itself; every other method as the loaded provider does."""

    def __init__(self, schema: bytes, provider: Future[grpc.GenericRpcHandler]) -> None:
        answers = {"GetSchema": plain_string_answer(schema.decode("utf-8")),
                   "GetPluginInfo": plain_string_answer(__version__)}
        self._early = {f"/{SERVICE}/{name}": grpc.unary_unary_rpc_method_handler(_constant(answer))
                       for name, answer in answers.items()}
        self._provider = provider

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        early = self._early.get(handler_call_details.method)
        if early is not None:
            return early
        # Waits for the load (started with the server); nothing but the two answers above can be served sooner.
        return self._provider.result().service(handler_call_details)


def _constant(answer: bytes) -> Callable[[bytes, Any], Any]:
    async def behaviour(request: bytes, context: Any) -> bytes:
        return answer

    return behaviour


def _start_loading(engine: str, loaded: Future[grpc.GenericRpcHandler]) -> None:
    def load() -> None:
        try:
            loaded.set_result(_load_provider(engine))
        except BaseException as exc:  # every waiting call fails with it; the traceback goes to stderr
            loaded.set_exception(exc)
            raise

    threading.Thread(target=load, name="load-provider", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``pulumi-resource-ucloud-images <engine-address>``: serve until the engine stops us."""
    parser = argparse.ArgumentParser(prog="pulumi-resource-ucloud-images",
                                     description="The ucloud-images Pulumi provider plugin (a gRPC server).")
    parser.add_argument("engine", help="address of the Pulumi engine")
    parser.add_argument("--logflow", action="store_true", help="accepted for the engine; ignored")
    parser.add_argument("--logtostderr", action="store_true", help="accepted for the engine; ignored")
    parser.add_argument("--version", action="version", version=__version__)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    schema = SCHEMA_FILE.read_bytes()

    async def serve() -> None:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        port = server.add_insecure_port("127.0.0.1:0")
        provider: Future[grpc.GenericRpcHandler] = Future()
        server.add_generic_rpc_handlers((_StartingHandler(schema, provider),))
        await server.start()
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()
        _start_loading(args.engine, provider)  # after the port: the engine waits for nothing else
        await server.wait_for_termination()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
