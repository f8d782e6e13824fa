"""The provider plugin, started exactly as the Pulumi engine starts it and driven over gRPC.

The engine runs ``pulumi-resource-ucloud-images <engine-address>``, reads the port from the first line of
the plugin's stdout and talks ``pulumirpc.ResourceProvider`` to it. These tests do the same, with a small
fake engine (it records ``Log`` calls) and the DescribeImage emulator on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.provider.experimental.property_value import Computed, PropertyValue
from pulumi.provider.experimental.provider import ConfigureRequest
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, provider_pb2, provider_pb2_grpc
from pulumi.runtime.rpc import UNKNOWN

from pulumi_ucloud_images import InvalidQueryError, __version__, lookup_images, resolve_settings
from pulumi_ucloud_images._emulator.catalog import DEMO_REGION
from pulumi_ucloud_images._emulator.service import Emulator
from pulumi_ucloud_images._pulumi.provider import UCloudImagesProvider, parse_arguments
from pulumi_ucloud_images._pulumi.schema import (
    GET_IMAGES_TOKEN,
    IMAGE_TOKEN,
    PINNED_IMAGE_TOKEN,
    build_schema,
)

PLUGIN = "pulumi-resource-ucloud-images"
PUBLIC_KEY = "plugin-test-public-key"
PRIVATE_KEY = f"plugin-test-private-{uuid.uuid4().hex}"
CENTOS = {"nameRegex": r"^CentOS 7\.2 "}
PROVIDER_URN = "urn:pulumi:dev::images::pulumi:providers:ucloud-images::default"
PINNED_URN = "urn:pulumi:dev::images::ucloud-images:index:PinnedImage::base"
PINNED_QUERY = {"nameRegex": r"^CentOS 7\.2 ", "osType": "linux", "mostRecent": True}

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schema.json"

slow = pytest.mark.slow


# -- the engine's side ------------------------------------------------------------------------------------


def plugin_command() -> list[str]:
    """The console script next to this interpreter, else the module it runs."""
    found = shutil.which(PLUGIN, path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "pulumi_ucloud_images"]


def plugin_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without UCloud or Pulumi settings, with an empty HOME."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("UCLOUD_", "PULUMI_CONFIG"))}
    env["HOME"] = str(home)
    env.update(extra)
    return env


class FakeEngine(engine_pb2_grpc.EngineServicer):
    """Just enough of the engine for a provider: it records what the plugin logs."""

    def __init__(self) -> None:
        self.logs: list[str] = []
        self.entries: list[tuple[int, str, str]] = []  # (severity, message, urn)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self, self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def Log(self, request: Any, context: Any) -> Any:
        self.logs.append(request.message)
        self.entries.append((request.severity, request.message, request.urn))
        return empty_pb2.Empty()

    def stop(self) -> None:
        self._server.stop(None)


class Plugin:
    """One plugin process, started the way the engine starts it; every answer is kept for leak checks."""

    def __init__(self, engine: FakeEngine, env: Mapping[str, str], workdir: Path) -> None:
        self.stderr_path = workdir / f"plugin-{uuid.uuid4().hex[:8]}.stderr"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [*plugin_command(), engine.address], stdout=subprocess.PIPE, stderr=stderr, env=dict(env)
            )
        assert self.process.stdout is not None
        with futures.ThreadPoolExecutor(max_workers=1) as pool:
            first_line = pool.submit(self.process.stdout.readline)
            try:
                port = int(first_line.result(timeout=60))
            except (futures.TimeoutError, ValueError):
                self.process.kill()
                raise AssertionError(f"the plugin printed no port; stderr:\n{self.stderr_path.read_text()}") from None
        self.port = port
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.answers: list[tuple[str, bytes]] = []
        self.errors: list[str] = []
        self.stdout_rest = b""

    def call(self, method: str, request: Any) -> Any:
        try:
            answer = getattr(self.stub, method)(request, timeout=60)
        except grpc.RpcError as exc:
            self.errors.append(exc.details() or "")
            raise
        self.answers.append((method, answer.SerializeToString()))
        return answer

    def schema(self) -> str:
        return str(self.call("GetSchema", provider_pb2.GetSchemaRequest(version=0)).schema)

    def check_config(self, news: Mapping[str, Any]) -> Any:
        return self.call("CheckConfig", provider_pb2.CheckRequest(urn=PROVIDER_URN, news=marshal(news)))

    def configure(self, args: Mapping[str, Any], secret: tuple[str, ...] = ("privateKey",)) -> Any:
        request = provider_pb2.ConfigureRequest(args=marshal(args, secret=secret), acceptSecrets=True)
        return self.call("Configure", request)

    def invoke(self, args: Mapping[str, Any], *, token: str = GET_IMAGES_TOKEN, secret: tuple[str, ...] = ()) -> Any:
        return self.call("Invoke", provider_pb2.InvokeRequest(tok=token, args=marshal(args, secret=secret)))

    def invoke_error(self, args: Mapping[str, Any], **kwargs: Any) -> str:
        with pytest.raises(grpc.RpcError) as caught:
            self.invoke(args, **kwargs)
        return str(caught.value.details())

    def close(self) -> str:
        """Stop the plugin (once); returns its stderr."""
        if self.process.stdout is None or self.process.stdout.closed:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stdout is not None
        self.stdout_rest = self.process.stdout.read()
        self.process.stdout.close()
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def marshal(values: Mapping[str, Any], secret: tuple[str, ...] = ()) -> struct_pb2.Struct:
    """Plain values -> the wire struct, with the keys in ``secret`` wrapped as Pulumi secrets."""
    return PropertyValue.marshal_map(
        {key: to_property(value).with_secret(key in secret) for key, value in values.items()}
    )


def to_property(value: Any) -> PropertyValue:
    if isinstance(value, dict):
        return PropertyValue({key: to_property(item) for key, item in value.items()})
    if isinstance(value, list):
        return PropertyValue([to_property(item) for item in value])
    if isinstance(value, int) and not isinstance(value, bool):
        return PropertyValue(float(value))
    return PropertyValue(value)


def result(answer: Any) -> dict[str, Any]:
    return json_format.MessageToDict(getattr(answer, "return"))


def failures(answer: Any) -> dict[str, str]:
    return {failure.property: failure.reason for failure in answer.failures}


def pinned_call(plugin: Plugin, method: str, **fields: Any) -> Any:
    request_type = getattr(provider_pb2, f"{method}Request")
    urn = fields.pop("urn", PINNED_URN)
    structs = {key: marshal(value) if isinstance(value, dict) else value for key, value in fields.items()}
    return plugin.call(method, request_type(urn=urn, **structs))


def publish_newer(emulator: Emulator, image_id: str, new_id: str) -> None:
    (record,) = [image for image in emulator.images(DEMO_REGION) if image["ImageId"] == image_id]
    emulator.publish({**record, "ImageId": new_id, "CreateTime": record["CreateTime"] + 86400})


# -- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[FakeEngine]:
    fake = FakeEngine()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(keys={PUBLIC_KEY: PRIVATE_KEY}) as running:
        yield running


@pytest.fixture(scope="module")
def plugin(engine: FakeEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    """One plugin for the tests that configure it themselves (its lookup memo is shared across them)."""
    home = tmp_path_factory.mktemp("plugin-home")
    started = Plugin(engine, plugin_env(home), home)
    yield started
    started.close()


@pytest.fixture
def start_plugin(engine: FakeEngine, tmp_path: Path) -> Iterator[Any]:
    """Start fresh plugins (no memo) with a chosen environment; all are stopped after the test."""
    started: list[Plugin] = []

    def start(**env: str) -> Plugin:
        home = Path(env.pop("HOME", str(tmp_path)))
        started.append(Plugin(engine, plugin_env(home, **env), tmp_path))
        return started[-1]

    yield start
    for running in started:
        running.close()


def settings_for(emulator: Emulator, **overrides: str) -> dict[str, str]:
    return {
        "publicKey": PUBLIC_KEY,
        "privateKey": PRIVATE_KEY,
        "baseUrl": emulator.base_url,
        "region": DEMO_REGION,
        **overrides,
    }


# -- schema, plugin info, config ----------------------------------------------------------------------------


@slow
def test_get_schema_serves_schema_json_byte_for_byte(plugin: Plugin) -> None:
    assert plugin.schema() == SCHEMA_PATH.read_text(encoding="utf-8")


@slow
def test_get_plugin_info_is_the_package_version(plugin: Plugin) -> None:
    assert plugin.call("GetPluginInfo", empty_pb2.Empty()).version == __version__


@slow
def test_check_config_accepts_the_settings_and_marks_the_private_key_secret(plugin: Plugin) -> None:
    news = {"publicKey": PUBLIC_KEY, "privateKey": PRIVATE_KEY, "region": "cn-bj2", "version": "0.1.0"}
    answer = plugin.check_config(news)
    assert not answer.failures
    inputs = PropertyValue.unmarshal_map(answer.inputs)
    assert inputs["privateKey"] == PropertyValue(PRIVATE_KEY, is_secret=True)
    assert inputs["publicKey"] == PropertyValue(PUBLIC_KEY)
    assert inputs["version"] == PropertyValue("0.1.0")  # the engine's own key passes through
    assert set(inputs) == set(news)


@slow
def test_check_config_lets_unknown_values_through_for_preview(plugin: Plugin) -> None:
    answer = plugin.check_config({"baseUrl": UNKNOWN, "privateKey": UNKNOWN})
    assert not answer.failures
    inputs = PropertyValue.unmarshal_map(answer.inputs)
    assert inputs["baseUrl"] == PropertyValue(UNKNOWN)
    assert inputs["privateKey"].is_secret


@slow
def test_unknown_settings_at_invoke_time_are_an_error(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure({**settings_for(emulator), "region": UNKNOWN})
    message = plugin.invoke_error(CENTOS)
    assert message == "Provider settings not known yet: region; lookups need known settings."


@slow
def test_check_config_failures_name_the_key(plugin: Plugin) -> None:
    answer = plugin.check_config({"publicKey": PUBLIC_KEY, "private_key": "x", "baseUrl": "ftp://example", "region": 2})
    found = failures(answer)
    assert set(found) == {"private_key", "baseUrl", "region"}
    assert found["private_key"].startswith("Unknown provider setting 'private_key' (did you mean 'privateKey'?);")
    assert "publicKey, privateKey, region, projectId, baseUrl, timeout, profile" in found["private_key"]
    assert not answer.HasField("inputs") or "private_key" not in answer.inputs.fields
    assert "http:// or https://" in found["baseUrl"]
    assert "must be a string" in found["region"]
    # The same endpoint rule as the core's: a port the core would refuse at a lookup is refused here already.
    assert failures(plugin.check_config({"baseUrl": "http://api.example:0"})) == {
        "baseUrl": "Invalid baseUrl 'http://api.example:0': must have a port from 1 to 65535, or none."
    }


def test_timeout_is_a_setting_as_ucloud_timeout_is(plugin: Plugin) -> None:
    """A number (an explicit provider's property) or its text (stack config), checked by the core's rule."""
    assert failures(plugin.check_config({"timeout": "12.5"})) == {}
    assert failures(plugin.check_config({"timeout": 12})) == {}
    assert failures(plugin.check_config({"timeout": "soon", "region": "cn-bj2"})) == {
        "timeout": "Invalid timeout 'soon': must be a positive, finite number of seconds."
    }
    assert failures(plugin.check_config({"timeout": 0})) == {
        "timeout": "Invalid timeout 0.0: must be a positive, finite number of seconds."
    }


@slow
def test_the_timeout_setting_bounds_each_request(start_plugin: Any, emulator: Emulator) -> None:
    started = start_plugin()
    started.configure({**settings_for(emulator), "timeout": 0.3})
    emulator.latency_ms = 1000  # within the default 30 s, beyond the 0.3 s set
    try:
        with pytest.raises(grpc.RpcError) as caught:
            started.invoke({**CENTOS, "osType": "linux"})
        assert "did not answer within 0.3 s" in str(caught.value.details())
    finally:
        emulator.latency_ms = 0


# -- getImages ----------------------------------------------------------------------------------------------


@slow
def test_configure_with_provider_args_then_invoke_finds_the_image(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    emulator.reset_requests()
    answer = plugin.invoke({**CENTOS, "osType": "linux"})
    assert not answer.failures
    found = result(answer)
    assert found["imageId"] == "uimage-f1chxn"
    assert found["ids"] == ["uimage-f1chxn"]
    assert found["totalCount"] == 1
    assert found["region"] == DEMO_REGION
    assert found["images"][0]["imageName"] == "CentOS 7.2 64位"
    assert found["images"][0]["features"] == ["NetEnhanced", "HotPlug"]
    assert found["query"] == {
        "nameRegex": CENTOS["nameRegex"], "osType": "Linux", "ids": [], "features": [], "states": ["Available"],
        "mostRecent": False, "includeMarketplace": False, "excludeEol": False, "gpuTypes": [], "sceneCategories": [],
        "prices": False,
    }
    assert emulator.request_count >= 1
    assert {record.params.get("Region") for record in emulator.requests} == {DEMO_REGION}


@slow
def test_invoke_answer_has_the_shape_the_schema_declares(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    found = result(plugin.invoke(CENTOS))
    schema = build_schema()
    outputs = schema["functions"][GET_IMAGES_TOKEN]["outputs"]
    assert set(outputs["required"]) <= set(found) <= set(outputs["properties"])
    image = schema["types"][IMAGE_TOKEN]
    # every attribute (the CentOS image's end of life is known, so eolDate too); only eolDate may be left out
    assert set(found["images"][0]) == set(image["properties"]) == {*image["required"], "eolDate"}
    assert found["images"][0]["eolDate"] == "2024-06-30" and found["images"][0]["architecture"] == "x86_64"
    query_type = outputs["properties"]["query"]["$ref"].removeprefix("#/types/")
    assert set(found["query"]) <= set(schema["types"][query_type]["properties"])


@slow
def test_invoke_agrees_with_the_python_api(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    found = result(plugin.invoke({"osType": "Linux", "nameRegex": r"^Ubuntu 22\.04", "architecture": "x86_64",
                                  "mostRecent": True}))
    settings = resolve_settings(public_key=PUBLIC_KEY, private_key=PRIVATE_KEY, base_url=emulator.base_url,
                                region=DEMO_REGION)
    expected = lookup_images(os_type="linux", name_regex=r"^Ubuntu 22\.04", architecture="x86_64", most_recent=True,
                             settings=settings)
    assert found["imageId"] == expected.image_id
    assert found["ids"] == list(expected.ids)
    assert found["totalCount"] == expected.total_count > 1


@slow
def test_an_image_past_its_end_of_life_is_returned_with_a_warning_to_the_engine(
    plugin: Plugin, engine: FakeEngine, emulator: Emulator
) -> None:
    plugin.configure(settings_for(emulator))
    seen = len(engine.entries)
    found = result(plugin.invoke({"nameRegex": r"^CentOS 7\.2 64位$"}))
    assert found["imageId"] == "uimage-f1chxn"
    (warning,) = found["warnings"]
    assert "uimage-f1chxn" in warning and "(2024/06/30, before " in warning
    assert "set excludeEol to leave such images out, or supportedUntil" in warning  # the schema's spelling
    assert engine.entries[seen:] == [(engine_pb2.WARNING, f"{GET_IMAGES_TOKEN}: {warning}", "")]
    assert plugin.invoke_error({"nameRegex": r"^CentOS 7\.2 64位$", "excludeEol": True}).startswith(
        "No image in region cn-bj2 matches nameRegex='^CentOS 7\\.2 64位$', states=[Available], excludeEol=True: ")


@slow
def test_a_new_pin_past_its_end_of_life_is_a_check_warning_on_the_resource(
    plugin: Plugin, engine: FakeEngine, emulator: Emulator
) -> None:
    plugin.configure(settings_for(emulator))
    seen = len(engine.entries)
    checked = pinned_call(plugin, "Check", news={"nameRegex": r"^CentOS 7\.2 64位$"})
    assert not checked.failures
    ((severity, message, urn),) = engine.entries[seen:]
    assert (severity, urn) == (engine_pb2.WARNING, PINNED_URN)
    assert "uimage-f1chxn" in message and "2024/06/30" in message and "excludeEol" in message


@slow
def test_the_query_region_wins_over_the_configured_region(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator, region="cn-sh2"))
    assert result(plugin.invoke({**CENTOS, "region": DEMO_REGION}))["imageId"] == "uimage-f1chxn"


@slow
def test_configure_from_flat_variables_of_older_engines(plugin: Plugin, emulator: Emulator) -> None:
    variables = {f"ucloud-images:config:{key}": value for key, value in settings_for(emulator).items()}
    plugin.call("Configure", provider_pb2.ConfigureRequest(variables=variables))
    assert result(plugin.invoke(CENTOS))["imageId"] == "uimage-f1chxn"


@slow
def test_bad_arguments_come_back_as_failures_before_any_request(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    emulator.reset_requests()
    answer = plugin.invoke(
        {"osType": "bsd", "nameRegex": "^(CentOS", "states": ["Available", "Gone"], "name_regex": "x", "zone": 3}
    )
    assert not answer.HasField("return")
    found = failures(answer)
    assert set(found) == {"osType", "nameRegex", "states", "name_regex", "zone"}
    # Each reason is the core's one sentence, with the property spelled as the schema spells it.
    assert found["osType"].startswith("Invalid osType 'bsd'") and "Linux, Windows" in found["osType"]
    assert found["nameRegex"].startswith("Invalid nameRegex '^(CentOS'") and "position 1" in found["nameRegex"]
    assert found["states"].startswith("Invalid states") and "'Gone'" in found["states"]
    assert "Available, Making, Unavailable, Copying" in found["states"]
    assert found["name_regex"].startswith("Unknown filter 'name_regex'") and "nameRegex" in found["name_regex"]
    assert found["zone"].startswith("Invalid zone 3")
    assert not any("_" in reason.split(" ")[1] for key, reason in found.items() if key != "name_regex")
    assert emulator.request_count == 0


@slow
def test_a_missing_region_is_a_failure_naming_region(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure({key: value for key, value in settings_for(emulator).items() if key != "region"})
    found = failures(plugin.invoke(CENTOS))
    assert list(found) == ["region"]
    assert "ucloud-images:region" in found["region"] and "UCLOUD_REGION" in found["region"]


@slow
def test_missing_keys_are_one_clear_error_naming_where_it_looked(plugin: Plugin) -> None:
    plugin.configure({"region": DEMO_REGION})
    message = plugin.invoke_error(CENTOS)
    assert message.startswith("No UCloud public key was found")
    assert "provider setting publicKey (Pulumi config ucloud-images:publicKey)" in message
    assert "UCLOUD_PUBLIC_KEY" in message
    assert "Traceback" not in message and 'File "' not in message


@slow
def test_ambiguity_is_an_error_in_the_schemas_spelling(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    message = plugin.invoke_error({"nameRegex": "^Ubuntu 22"})
    assert "images in region cn-bj2 match nameRegex='^Ubuntu 22'" in message
    assert "Set mostRecent" in message and "most_recent" not in message
    assert "uimage-" in message


@slow
def test_no_match_is_an_error_naming_the_criteria(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    message = plugin.invoke_error({"nameRegex": "^NoSuchOS", "osType": "Windows"})
    assert message.startswith("No image in region cn-bj2 matches osType='Windows', nameRegex='^NoSuchOS', states=")
    assert "os_type" not in message and "name_regex" not in message


@slow
def test_unknown_function_is_an_error(plugin: Plugin) -> None:
    message = plugin.invoke_error({}, token="ucloud-images:index:getImage")
    assert message == f"Unknown function 'ucloud-images:index:getImage'; this provider serves {GET_IMAGES_TOKEN}."


@slow
def test_secret_arguments_make_a_secret_answer(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    answer = plugin.invoke(CENTOS, secret=("nameRegex",))
    values = PropertyValue.unmarshal_map(getattr(answer, "return"))
    assert values["imageId"] == PropertyValue("uimage-f1chxn", is_secret=True)
    assert all(value.is_secret for value in values.values())


@slow
def test_api_errors_carry_the_retcode_and_request_id(start_plugin: Any, emulator: Emulator) -> None:
    plugin = start_plugin()
    wrong_key = f"wrong-{uuid.uuid4().hex}"
    plugin.configure(settings_for(emulator, privateKey=wrong_key))
    emulator.reset_requests()
    message = plugin.invoke_error(CENTOS)
    (request,) = emulator.requests
    assert request.ret_code == 171
    assert message.startswith("UCloud API DescribeImage failed with RetCode 171")
    assert f"(request id {request.request_id})" in message
    assert request.request_id and wrong_key not in message


@slow
def test_environment_is_the_fallback_for_provider_settings(start_plugin: Any, emulator: Emulator) -> None:
    plugin = start_plugin(
        UCLOUD_PUBLIC_KEY=PUBLIC_KEY, UCLOUD_PRIVATE_KEY=PRIVATE_KEY, UCLOUD_API_BASE_URL=emulator.base_url,
        UCLOUD_REGION=DEMO_REGION,
    )
    plugin.configure({})
    assert result(plugin.invoke(CENTOS))["imageId"] == "uimage-f1chxn"


@slow
def test_provider_settings_win_over_the_environment(start_plugin: Any, emulator: Emulator) -> None:
    plugin = start_plugin(UCLOUD_PUBLIC_KEY="someone-else", UCLOUD_PRIVATE_KEY="not-this-one", UCLOUD_REGION="hk")
    plugin.configure(settings_for(emulator))
    assert result(plugin.invoke(CENTOS))["region"] == DEMO_REGION


@slow
def test_a_named_profile_reads_the_ucloud_cli_files(start_plugin: Any, emulator: Emulator, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ucloud").mkdir(parents=True)
    (home / ".ucloud" / "config.json").write_text(json.dumps([
        {"profile": "default", "active": True, "region": "hk", "base_url": "http://127.0.0.1:9"},
        {"profile": "ci", "region": DEMO_REGION, "base_url": emulator.base_url},
    ]))
    (home / ".ucloud" / "credential.json").write_text(json.dumps([
        {"profile": "default", "public_key": "someone-else", "private_key": "not-this-one"},
        {"profile": "ci", "public_key": PUBLIC_KEY, "private_key": PRIVATE_KEY},
    ]))
    plugin = start_plugin(HOME=str(home))
    plugin.configure({"profile": "ci"})
    assert result(plugin.invoke(CENTOS))["imageId"] == "uimage-f1chxn"


@slow
def test_the_private_key_appears_in_no_answer_error_or_log(
    start_plugin: Any, engine: FakeEngine, emulator: Emulator
) -> None:
    plugin = start_plugin()
    engine.logs.clear()
    checked = plugin.check_config(settings_for(emulator))
    plugin.configure(settings_for(emulator))
    plugin.schema()
    plugin.invoke(CENTOS)
    plugin.invoke({"osType": "bsd"})
    plugin.invoke_error({"nameRegex": "^Ubuntu"})
    plugin.invoke_error({}, token="ucloud-images:index:nope")
    pinned = json_format.MessageToDict(pinned_call(plugin, "Check", news=PINNED_QUERY).inputs)
    pinned_call(plugin, "Create", properties=pinned)
    plugin.configure({key: value for key, value in settings_for(emulator).items() if key != "publicKey"})
    plugin.invoke_error(CENTOS)
    with pytest.raises(grpc.RpcError):
        pinned_call(plugin, "Create", properties=pinned)
    stderr = plugin.close()

    secret = PRIVATE_KEY.encode()
    # The one answer that must carry it is CheckConfig's (Pulumi stores it, encrypted): there it is a secret.
    assert PropertyValue.unmarshal_map(checked.inputs)["privateKey"].is_secret
    leaks = [method for method, data in plugin.answers if secret in data and method != "CheckConfig"]
    assert not leaks
    assert len(plugin.errors) == 4 and not any(PRIVATE_KEY in error for error in plugin.errors)
    assert PRIVATE_KEY not in stderr
    assert secret not in plugin.stdout_rest
    assert not any(PRIVATE_KEY in line for line in engine.logs)


@slow
def test_the_yaml_example_resolves_through_the_plugin(plugin: Plugin, emulator: Emulator) -> None:
    """What a Pulumi CLI would do with examples/yaml: invoke, check and create, then read the exported fields."""
    program = yaml.safe_load((ROOT / "examples" / "yaml" / "Pulumi.yaml").read_text(encoding="utf-8"))
    schema = build_schema()
    function = schema["functions"][GET_IMAGES_TOKEN]
    plugin.configure(settings_for(emulator))
    answers = {}
    for name, variable in program["variables"].items():
        call = variable["fn::invoke"]
        assert call["function"] == GET_IMAGES_TOKEN
        assert set(call["arguments"]) <= set(function["inputs"]["properties"])
        for key, value in call["arguments"].items():  # enum-typed arguments use the enum's values
            spec = function["inputs"]["properties"][key]
            ref = spec.get("items", spec).get("$ref", "").removeprefix("#/types/")
            if ref:
                allowed = {entry["value"] for entry in schema["types"][ref]["enum"]}
                assert set(value if isinstance(value, list) else [value]) <= allowed
        answer = plugin.invoke(call["arguments"])
        assert not answer.failures, failures(answer)
        answers[name] = result(answer)
    declared = {name: set(function["outputs"]["properties"]) for name in answers}
    for name, resource in program.get("resources", {}).items():
        spec = schema["resources"][resource["type"]]
        assert set(resource["properties"]) <= set(spec["inputProperties"])
        urn = f"urn:pulumi:dev::{program['name']}::{resource['type']}::{name}"
        checked = pinned_call(plugin, "Check", urn=urn, news=resource["properties"])
        assert not checked.failures, failures(checked)
        created = pinned_call(plugin, "Create", urn=urn, properties=json_format.MessageToDict(checked.inputs))
        answers[name] = json_format.MessageToDict(created.properties)
        declared[name] = set(spec["properties"])
    assert program["outputs"]
    for expression in program["outputs"].values():
        source, _, field = expression.removeprefix("${").removesuffix("}").partition(".")
        assert field in declared[source]
        assert answers[source][field]
    assert answers["centos"]["imageId"] == answers["pinnedCentos"]["imageId"] == "uimage-f1chxn"


# -- PinnedImage ----------------------------------------------------------------------------------------------

@slow
def test_pinned_image_resolves_once_and_keeps_its_image(start_plugin: Any) -> None:
    with Emulator(keys={PUBLIC_KEY: PRIVATE_KEY}) as emulator:
        plugin = start_plugin()
        plugin.configure(settings_for(emulator))

        checked = pinned_call(plugin, "Check", news=PINNED_QUERY)
        assert not checked.failures
        inputs = json_format.MessageToDict(checked.inputs)
        # canonical, the region filled in, and the image it will pin (resolved at check, marked as such)
        assert inputs == {**PINNED_QUERY, "osType": "Linux", "region": DEMO_REGION, "imageId": "uimage-f1chxn",
                          "resolvedImageId": "uimage-f1chxn"}

        preview = pinned_call(plugin, "Create", properties=inputs, preview=True)
        assert preview.id == ""
        assert json_format.MessageToDict(preview.properties)["imageId"] == "uimage-f1chxn"  # known at preview
        assert json_format.MessageToDict(preview.properties)["imageName"] == UNKNOWN
        assert "resolvedImageId" not in json_format.MessageToDict(preview.properties)

        created = pinned_call(plugin, "Create", properties=inputs)
        state = json_format.MessageToDict(created.properties)
        assert created.id == state["imageId"] == state["latestImageId"] == "uimage-f1chxn"
        assert state["imageName"] == "CentOS 7.2 64位" and state["features"] == ["NetEnhanced", "HotPlug"]
        assert state["query"]["nameRegex"] == PINNED_QUERY["nameRegex"] and state["query"]["osType"] == "Linux"
        full_schema = build_schema()
        schema = full_schema["resources"][PINNED_IMAGE_TOKEN]
        assert set(schema["required"]) <= set(state) <= set(schema["properties"])
        query_type = full_schema["types"][schema["properties"]["query"]["$ref"].removeprefix("#/types/")]
        assert set(query_type["required"]) <= set(state["query"]) <= set(query_type["properties"])
        assert state["query"]["states"] == ["Available"] and state["query"]["mostRecent"] is True

        publish_newer(emulator, "uimage-f1chxn", "uimage-c72new")
        unchanged = pinned_call(plugin, "Diff", id=created.id, olds=state, news=inputs)
        assert unchanged.changes == provider_pb2.DiffResponse.DIFF_NONE

        refreshed = pinned_call(plugin, "Read", id=created.id, properties=state, inputs=inputs)
        after = json_format.MessageToDict(refreshed.properties)
        assert refreshed.id == after["imageId"] == "uimage-f1chxn"
        assert after["latestImageId"] == "uimage-c72new"  # drift is visible, the pin did not move

        repinned = pinned_call(plugin, "Diff", id=created.id, olds=after, news={**inputs, "repin": "2"})
        assert repinned.changes == provider_pb2.DiffResponse.DIFF_SOME
        assert set(repinned.replaces) == {"repin", "imageId"}
        assert set(repinned.detailedDiff) == {"repin", "imageId"}
        requery = pinned_call(plugin, "Diff", id=created.id, olds=after, news={**inputs, "osType": "Windows"})
        assert "osType" in requery.replaces

        emulator.remove("uimage-f1chxn")
        with pytest.raises(grpc.RpcError) as gone:
            pinned_call(plugin, "Read", id=created.id, properties=after, inputs=inputs)
        assert str(gone.value.details()).startswith("The pinned image uimage-f1chxn no longer exists in region cn-bj2")
        assert "repin" in str(gone.value.details()) and "Traceback" not in str(gone.value.details())
        pinned_call(plugin, "Delete", id=created.id, properties=after)


@slow
def test_pinned_image_check_goes_on_while_provider_settings_are_unknown(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure({**settings_for(emulator), "baseUrl": UNKNOWN, "publicKey": UNKNOWN})
    checked = pinned_call(plugin, "Check", news=PINNED_QUERY)
    assert not checked.failures
    assert json_format.MessageToDict(checked.inputs)["region"] == DEMO_REGION  # the region setting is known

    plugin.configure({**settings_for(emulator), "region": UNKNOWN})
    checked = pinned_call(plugin, "Check", news=PINNED_QUERY)
    assert not checked.failures
    assert json_format.MessageToDict(checked.inputs)["region"] == UNKNOWN  # so the pin's region is not known yet
    with pytest.raises(grpc.RpcError) as caught:  # a lookup, unlike a check, needs every setting
        pinned_call(plugin, "Create", properties=json_format.MessageToDict(checked.inputs) | {"region": DEMO_REGION})
    assert caught.value.details() == "Settings not known yet: region; lookups need known settings."


@slow
def test_pinned_image_keeps_secretness_per_property(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    request = provider_pb2.CheckRequest(urn=PINNED_URN, news=marshal(PINNED_QUERY, secret=("nameRegex",)))
    checked = PropertyValue.unmarshal_map(plugin.call("Check", request).inputs)
    assert {key for key, value in checked.items() if value.contains_secret()} == {"nameRegex"}

    created = plugin.call("Create", provider_pb2.CreateRequest(urn=PINNED_URN,
                                                               properties=PropertyValue.marshal_map(checked)))
    state = PropertyValue.unmarshal_map(created.properties)
    assert {key for key, value in state.items() if value.contains_secret()} == {"nameRegex", "query"}
    query = state["query"].value
    assert isinstance(query, Mapping) and not state["query"].is_secret
    assert {key for key, value in query.items() if value.is_secret} == {"nameRegex"}
    assert state["imageId"] == PropertyValue("uimage-f1chxn")

    read = plugin.call("Read", provider_pb2.ReadRequest(id=created.id, urn=PINNED_URN, properties=created.properties))
    refreshed = PropertyValue.unmarshal_map(read.properties)
    assert {key for key, value in refreshed.items() if value.contains_secret()} == {"nameRegex", "query"}
    refreshed_query = refreshed["query"].value
    assert isinstance(refreshed_query, Mapping)
    assert {key for key, value in refreshed_query.items() if value.is_secret} == {"nameRegex"}


@slow
def test_pinned_image_check_failures_use_the_schemas_names(plugin: Plugin, emulator: Emulator) -> None:
    plugin.configure(settings_for(emulator))
    found = failures(pinned_call(plugin, "Check", news={"osType": "bsd", "mostRecent": "often", "repin": 3}))
    assert set(found) == {"osType", "mostRecent", "repin"}
    assert found["osType"].startswith("Invalid osType 'bsd'")
    assert found["mostRecent"].startswith("Invalid mostRecent")
    assert "most_recent" not in found["mostRecent"] and "os_type" not in found["osType"]


@slow
def test_unknown_resource_types_are_an_error(plugin: Plugin) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        pinned_call(plugin, "Check", urn="urn:pulumi:dev::images::ucloud-images:index:Pin::x", news={})
    assert caught.value.details() == (
        "Unknown resource type 'ucloud-images:index:Pin'; this provider has ucloud-images:index:PinnedImage."
    )


@slow
def test_the_launcher_pulumi_uses_for_a_plugin_directory(engine: FakeEngine, tmp_path: Path) -> None:
    """With PulumiPlugin.yaml and pyproject.toml, the language host runs ``python -m pulumi.run.plugin <name>``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.run.plugin", "pulumi-ucloud-images", engine.address],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=plugin_env(tmp_path),
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            answer = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
        assert answer.schema == SCHEMA_PATH.read_text(encoding="utf-8")
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- in-process units -------------------------------------------------------------------------------------------


def test_whole_numbers_arrive_as_floats_and_are_read_as_integers() -> None:
    query, problems = parse_arguments({"mostRecent": PropertyValue(True), "ids": PropertyValue([PropertyValue("a")])})
    assert not problems and query is not None and query.most_recent and query.ids == ("a",)
    query, problems = parse_arguments({"zone": PropertyValue(2.0)})
    assert query is None and [failure.property for failure in problems] == ["zone"]


def test_unknown_arguments_are_failures_not_guesses() -> None:
    query, problems = parse_arguments({"nameRegex": PropertyValue(Computed())})
    assert query is None
    assert [(failure.property, failure.reason) for failure in problems] == [
        ("nameRegex", "nameRegex is not known yet; getImages needs known arguments.")
    ]


def test_null_arguments_are_unset() -> None:
    query, problems = parse_arguments({"region": PropertyValue(None), "states": PropertyValue(None)})
    assert not problems and query is not None and query.region is None and query.states == ("Available",)


def test_the_provider_repr_shows_which_settings_are_set_but_no_values() -> None:
    provider = UCloudImagesProvider()
    request = ConfigureRequest(
        variables={},
        args={"publicKey": PropertyValue(PUBLIC_KEY), "privateKey": PropertyValue(PRIVATE_KEY, is_secret=True)},
        accept_secrets=True,
        accept_resources=False,
    )
    asyncio.run(provider.configure(request))
    assert repr(provider) == "UCloudImagesProvider(settings=['publicKey'])"
    assert PRIVATE_KEY not in repr(vars(provider))


def test_a_bad_provider_setting_is_named_as_the_plugin_spells_it() -> None:
    from pulumi_ucloud_images._pulumi.provider import PLUGIN_FACE
    from pulumi_ucloud_images._query import parse_query
    from pulumi_ucloud_images._settings.scope import settings_for

    config = {"ucloud:baseUrl": "http://api.example:0", "ucloud:publicKey": "pk", "ucloud:privateKey": "sk"}
    with pytest.raises(InvalidQueryError) as caught:
        settings_for(parse_query(region="cn-bj2"), config=config.get, face=PLUGIN_FACE, env={})
    assert str(caught.value) == (
        "Invalid baseUrl 'http://api.example:0' (from the provider setting baseUrl (Pulumi config "
        "ucloud-images:baseUrl)): must have a port from 1 to 65535, or none."
    )
