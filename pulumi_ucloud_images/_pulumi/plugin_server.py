"""The plugin's process: the schema at once, the provider only when a call needs it.

``pulumi-resource-ucloud-images <engine-address>`` listens on a free loopback port and prints it on stdout, as
the engine expects. A language host often starts the plugin only for its schema (the YAML host does, on every
preview whose schema it has not cached), so the process answers what such a start asks, ``Handshake``,
``GetSchema``, ``GetPluginInfo`` and ``Cancel``, with nothing imported but gRPC and protobuf: the shipped
``schema.json``, the version, and the SDK servicer's own answers (it implements no ``Handshake``; a ``Cancel``
before anything started has nothing to stop). The first other call loads the provider
(:mod:`~pulumi_ucloud_images._pulumi.provider`: the
Pulumi SDK, pydantic, requests, most of the start-up time) and it serves every call from then on. The engine
stops the plugin with SIGINT and waits for it to exit: the server stops and the process ends without the
interpreter's teardown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import wrappers_pb2

from .._version import __version__

__all__ = ["SCHEMA_FILE", "SERVER_OPTIONS", "SERVICE", "main", "plain_string_answer"]

SERVICE = "pulumirpc.ResourceProvider"
SCHEMA_FILE = Path(__file__).with_name("schema.json")
"""The schema the plugin serves: the package's copy of ``schema.json`` (``schema.SERVED_SCHEMA_PATH``, which
``scripts/codegen.py`` writes and checks); named here too so that serving it imports no model."""

SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 400 * 1024 * 1024),
    ("grpc.server_max_unrequested_time_in_server", 30 * 60),
]
"""The gRPC options Pulumi's own plugins are served with: messages as large as the engine sends (400 MiB), and
no idle cut-off within a deployment's half hour."""


def plain_string_answer(text: str) -> bytes:
    """A ``GetSchemaResponse`` (``string schema = 1``) or a ``PluginInfo`` (``string version = 1``), encoded.

    Protobuf messages with the same field numbers and types are the same bytes on the wire, and
    ``google.protobuf.StringValue`` is ``string value = 1``; a test checks this against Pulumi's own messages.
    """
    return wrappers_pb2.StringValue(value=text).SerializeToString()


def _load_provider(engine: str) -> grpc.GenericRpcHandler:
    """The full plugin: the SDK's servicer around :class:`~pulumi_ucloud_images._pulumi.provider.UCloudImagesProvider`,
    as one gRPC handler.

    Imported with the cyclic garbage collector paused (in this process only, which is the plugin's own):
    importing makes many objects and almost no garbage, and the collections they trigger took about 15 ms of
    the 250 ms load.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        from .provider import handler

        return handler(engine)
    finally:
        if collecting:
            gc.enable()


class _StartingHandler(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no types
    """Answers a start for the schema by itself; loads the provider at the first call that needs it."""

    def __init__(self, schema: bytes, load: Callable[[], grpc.GenericRpcHandler]) -> None:
        answers = {"GetSchema": plain_string_answer(schema.decode("utf-8")),
                   "GetPluginInfo": plain_string_answer(__version__),
                   "Cancel": b""}  # google.protobuf.Empty
        self._early = {f"/{SERVICE}/{name}": grpc.unary_unary_rpc_method_handler(_constant(answer))
                       for name, answer in answers.items()}
        self._early[f"/{SERVICE}/Handshake"] = grpc.unary_unary_rpc_method_handler(_unimplemented)
        self._load = load
        self._provider: grpc.GenericRpcHandler | None = None

    @property
    def loaded(self) -> bool:
        return self._provider is not None

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        method = str(handler_call_details.method)
        if self._provider is None:
            if not method.startswith(f"/{SERVICE}/"):
                return None  # another service (the plugin host's health check): unimplemented, as the SDK has it
            early = self._early.get(method)
            if early is not None:
                return early
            # Blocks the event loop for the load, and so every other call, which all need the provider too.
            self._provider = self._load()
        return self._provider.service(handler_call_details)


def _constant(answer: bytes) -> Callable[[bytes, Any], Awaitable[bytes]]:
    async def behaviour(request: bytes, context: Any) -> bytes:
        return answer

    return behaviour


async def _unimplemented(request: bytes, context: Any) -> bytes:
    """What the SDK's servicer answers for a method it leaves to the generated base class."""
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
    raise AssertionError("abort returns only by raising")


def main(argv: Sequence[str] | None = None, *, exit_now: bool = True) -> None:
    """Console script ``pulumi-resource-ucloud-images <engine-address>``: serve until the engine stops us (SIGINT),
    then stop the server and end the process at once (``exit_now``, see :func:`_exit_now`)."""
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
        server.add_generic_rpc_handlers((_StartingHandler(schema, lambda: _load_provider(args.engine)),))
        stopping = asyncio.Event()
        # Where the loop cannot take signals (Windows, another thread), SIGINT stays a KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stopping.set)
        await server.start()
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait((stopped, asyncio.ensure_future(server.wait_for_termination())),
                           return_when=asyncio.FIRST_COMPLETED)
        if stopped.done():
            await server.stop(None)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    if exit_now:
        _exit_now()


def _exit_now() -> None:
    """End the process without tearing the interpreter down.

    The engine stops a plugin with SIGINT and waits for it to exit (``cmdutil.TerminateProcessGroup`` in the
    Pulumi Go SDK, one second before it kills it), at the end of every preview. Tearing down the interpreter
    after the provider is loaded (700 modules: the Pulumi SDK, pydantic, requests) takes 70 to 110 ms, all of
    it added to the preview; the server is stopped and nothing is left to write but the standard streams.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
