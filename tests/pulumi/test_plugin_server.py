"""The plugin's process: the schema and version answered before the provider is loaded, the rest by the provider."""

from __future__ import annotations

import ast
import asyncio
import signal
import subprocess
import sys
from typing import Any, NamedTuple

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from pulumi_ucloud_images._pulumi import plugin_server as _plugin_server
from pulumi_ucloud_images._pulumi import schema as _schema
from pulumi_ucloud_images._pulumi.plugin_server import SERVICE, plain_string_answer
from pulumi_ucloud_images._version import __version__


class Details(NamedTuple):
    method: str
    invocation_metadata: tuple[Any, ...] = ()


class Context:
    """What a behaviour is given as its context: records the status it ends the call with."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted


class Aborted(Exception):
    pass


def behaviour(handler: grpc.GenericRpcHandler, method: str) -> Any:
    found = handler.service(Details(f"/{SERVICE}/{method}"))
    assert found is not None and found.unary_unary is not None
    return found.unary_unary


def answer(handler: grpc.GenericRpcHandler, method: str) -> bytes:
    answered: bytes = asyncio.run(behaviour(handler, method)(b"", Context()))
    return answered


def never_loaded() -> grpc.GenericRpcHandler:
    raise AssertionError("the provider was loaded")


def starting() -> _plugin_server._StartingHandler:
    return _plugin_server._StartingHandler(_plugin_server.SCHEMA_FILE.read_bytes(), never_loaded)


def test_the_plain_answers_are_pulumis_messages() -> None:
    text = "{\"name\": \"ucloud-images\", \"description\": \"镜像\"}"
    encoded = plain_string_answer(text)
    assert encoded == provider_pb2.GetSchemaResponse(schema=text).SerializeToString()
    assert provider_pb2.GetSchemaResponse.FromString(encoded).schema == text
    assert plugin_pb2.PluginInfo.FromString(plain_string_answer("0.1.0")).version == "0.1.0"


def test_the_served_schema_is_the_package_copy_of_what_the_models_produce() -> None:
    assert _plugin_server.SCHEMA_FILE == _schema.SERVED_SCHEMA_PATH
    assert _plugin_server.SCHEMA_FILE.read_text(encoding="utf-8") == _schema.render()


def test_a_start_for_the_schema_never_loads_the_provider() -> None:
    """What the YAML host's schema loader calls: Handshake, GetPluginInfo, GetSchema, a health check, Cancel."""
    handler = starting()
    context = Context()
    with pytest.raises(Aborted):
        asyncio.run(behaviour(handler, "Handshake")(b"", context))
    assert context.code == grpc.StatusCode.UNIMPLEMENTED
    assert plugin_pb2.PluginInfo.FromString(answer(handler, "GetPluginInfo")).version == __version__
    assert provider_pb2.GetSchemaResponse.FromString(answer(handler, "GetSchema")).schema == _schema.render()
    assert handler.service(Details("/grpc.health.v1.Health/Check")) is None
    assert answer(handler, "Cancel") == empty_pb2.Empty().SerializeToString()
    assert not handler.loaded


def test_the_early_answers_are_the_sdk_servicers() -> None:
    """Handshake unimplemented and Cancel an Empty: if an SDK release implements Handshake, this fails."""
    from pulumi_ucloud_images._pulumi.provider import handler

    full = handler("127.0.0.1:1")
    context = Context()
    with pytest.raises(NotImplementedError):
        behaviour(full, "Handshake")(provider_pb2.ProviderHandshakeRequest(), context)
    assert context.code == grpc.StatusCode.UNIMPLEMENTED
    try:
        cancelled = asyncio.run(behaviour(full, "Cancel")(empty_pb2.Empty(), Context()))
    except NotImplementedError:  # SDKs before 3.2xx leave Cancel unimplemented, which the engine ignores
        cancelled = None
    assert cancelled in (empty_pb2.Empty(), None)  # the early Empty says no more than either


def test_every_other_call_loads_the_provider_once_and_is_its() -> None:
    class Provider(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no types
        def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
            async def behaviour(request: bytes, context: Any) -> bytes:
                return str(handler_call_details.method).encode()

            return grpc.unary_unary_rpc_method_handler(behaviour)

    loads: list[Provider] = []

    def load() -> grpc.GenericRpcHandler:
        loads.append(Provider())
        return loads[-1]

    handler = _plugin_server._StartingHandler(b"{}", load)
    assert answer(handler, "Configure") == f"/{SERVICE}/Configure".encode()
    assert answer(handler, "Invoke") == f"/{SERVICE}/Invoke".encode()
    assert answer(handler, "GetSchema") == f"/{SERVICE}/GetSchema".encode()  # the provider's, once loaded
    assert handler.loaded and len(loads) == 1


def test_the_provider_handler_serves_every_method_of_the_service() -> None:
    from pulumi_ucloud_images._pulumi.provider import handler

    full = handler("127.0.0.1:1")
    for method in provider_pb2.DESCRIPTOR.services_by_name["ResourceProvider"].methods:
        assert full.service(Details(f"/{SERVICE}/{method.name}")) is not None, method.name


@pytest.mark.slow
def test_starting_the_plugin_imports_no_model_and_no_pulumi() -> None:
    code = ("import sys, pulumi_ucloud_images._pulumi.plugin_server\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pydantic', 'requests', 'regex')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert ast.literal_eval(done.stdout.strip()) == []


def _started_plugin() -> tuple[subprocess.Popen[bytes], int]:
    """The plugin as the engine starts it (its console script's code), with its port read from stdout."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from pulumi_ucloud_images._pulumi.plugin_server import main; main()", "127.0.0.1:1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise AssertionError(f"no port: {line!r}; stderr: {process.communicate()[1].decode()}")
    return process, int(line)


def _stopped_as_the_engine_stops_it(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """SIGINT, as ``cmdutil.TerminateProcessGroup`` sends before its one-second wait and SIGKILL."""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr.decode()


@pytest.mark.slow
@pytest.mark.parametrize("calls", [("GetSchema",), ("GetSchema", "Configure")], ids=["schema-only", "loaded"])
def test_sigint_stops_the_plugin_cleanly(calls: tuple[str, ...]) -> None:
    """The engine ends every plugin with SIGINT: the plugin stops its server and exits 0 with nothing on stderr
    (a server left to the interpreter's teardown wrote 'Exception ignored in: Server.__del__ ... Event loop is
    closed'), whether it only served its schema or loaded the provider."""
    process, port = _started_plugin()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            for call in calls:
                if call == "GetSchema":
                    assert stub.GetSchema(provider_pb2.GetSchemaRequest(), timeout=60).schema == _schema.render()
                else:
                    stub.Configure(provider_pb2.ConfigureRequest(acceptSecrets=True), timeout=60)
    finally:
        code, stderr = _stopped_as_the_engine_stops_it(process)
    assert (code, stderr) == (0, "")


def test_the_provider_loads_with_the_collector_paused_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The load pauses the cyclic garbage collector and gives it back as it was, also when the import fails."""
    import gc

    seen: list[bool] = []
    real = grpc.unary_unary_rpc_method_handler

    def spy(*args: Any, **kwargs: Any) -> Any:  # called by the generated servicer code inside the load
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(grpc, "unary_unary_rpc_method_handler", spy)
    assert gc.isenabled()
    loaded = _plugin_server._load_provider("127.0.0.1:1")
    assert loaded.service(Details(f"/{SERVICE}/Configure")) is not None
    assert seen and not any(seen)
    assert gc.isenabled()

    monkeypatch.setitem(sys.modules, "pulumi_ucloud_images._pulumi.provider", None)
    with pytest.raises(ImportError):
        _plugin_server._load_provider("127.0.0.1:1")
    assert gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(ImportError):
            _plugin_server._load_provider("127.0.0.1:1")
        assert not gc.isenabled()  # a collector the process had turned off stays off
    finally:
        gc.enable()
