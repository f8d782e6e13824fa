"""The plugin's process: the schema and version answered before the provider is loaded, the rest by the provider."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from concurrent.futures import Future
from typing import Any, NamedTuple

import grpc
import pytest
from pulumi.runtime.proto import plugin_pb2, provider_pb2

from pulumi_ucloud_images import _plugin_server, _pulumi_sdk, _schema
from pulumi_ucloud_images._plugin_server import SERVICE, plain_string_answer
from pulumi_ucloud_images._version import __version__


class Details(NamedTuple):
    method: str
    invocation_metadata: tuple[Any, ...] = ()


def answer(handler: grpc.GenericRpcHandler, method: str) -> bytes:
    found = handler.service(Details(f"/{SERVICE}/{method}"))
    assert found is not None and found.unary_unary is not None
    answered: bytes = asyncio.run(found.unary_unary(b"", None))
    return answered


def test_the_plain_answers_are_pulumis_messages() -> None:
    text = "{\"name\": \"ucloud-images\", \"description\": \"镜像\"}"
    encoded = plain_string_answer(text)
    assert encoded == provider_pb2.GetSchemaResponse(schema=text).SerializeToString()
    assert provider_pb2.GetSchemaResponse.FromString(encoded).schema == text
    assert plugin_pb2.PluginInfo.FromString(plain_string_answer("0.1.0")).version == "0.1.0"


def test_the_server_options_are_the_sdks() -> None:
    assert _plugin_server.SERVER_OPTIONS == _pulumi_sdk.GRPC_SERVER_OPTIONS


def test_the_served_schema_is_the_package_copy_of_what_the_models_produce() -> None:
    assert _plugin_server.SCHEMA_FILE == _schema.SERVED_SCHEMA_PATH
    assert _plugin_server.SCHEMA_FILE.read_text(encoding="utf-8") == _schema.render()


def test_schema_and_version_are_answered_while_the_provider_is_still_loading() -> None:
    loading: Future[grpc.GenericRpcHandler] = Future()  # never finishes
    handler = _plugin_server._StartingHandler(_plugin_server.SCHEMA_FILE.read_bytes(), loading)
    schema = provider_pb2.GetSchemaResponse.FromString(answer(handler, "GetSchema")).schema
    assert schema == _schema.render()
    assert plugin_pb2.PluginInfo.FromString(answer(handler, "GetPluginInfo")).version == __version__


def test_every_other_method_is_the_loaded_providers() -> None:
    class Provider(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no types
        def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
            async def behaviour(request: bytes, context: Any) -> bytes:
                return str(handler_call_details.method).encode()

            return grpc.unary_unary_rpc_method_handler(behaviour)

    loaded: Future[grpc.GenericRpcHandler] = Future()
    loaded.set_result(Provider())
    handler = _plugin_server._StartingHandler(b"{}", loaded)
    assert answer(handler, "Configure") == f"/{SERVICE}/Configure".encode()


def test_the_provider_handler_serves_every_method_of_the_service() -> None:
    from pulumi_ucloud_images._provider import handler

    full = handler("127.0.0.1:1")
    for method in provider_pb2.DESCRIPTOR.services_by_name["ResourceProvider"].methods:
        assert full.service(Details(f"/{SERVICE}/{method.name}")) is not None, method.name


@pytest.mark.slow
def test_starting_the_plugin_imports_no_model_and_no_pulumi() -> None:
    code = ("import sys, pulumi_ucloud_images._plugin_server\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pydantic', 'requests', 'regex')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert ast.literal_eval(done.stdout.strip()) == []
