"""get_images / get_images_output: plain Python, Pulumi programs (mocks and a gRPC engine stand-in), memo, errors."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import math
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pulumi
import pulumi.runtime
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2, resource_pb2_grpc
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.sync_await import _ensure_event_loop

from pulumi_ucloud_images import (
    AmbiguousImageError,
    GetImagesResult,
    Image,
    ImageQuery,
    InvalidQueryError,
    NoImageFoundError,
    ResponseFormatError,
    get_images,
    get_images_output,
)
from pulumi_ucloud_images._cli import main as cli_main
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._pulumi.functions import AwaitableGetImagesResult
from pulumi_ucloud_images._select import select

TOKEN = "ucloud-images:index:getImages"
UBUNTU: dict[str, Any] = {"region": "cn-bj2", "image_type": "base", "os_type": "linux", "name_regex": r"^Ubuntu 22\.04",
                          "architecture": "x86_64", "most_recent": True}
UBUNTU_ID = "uimage-ub2205"  # the newest Available x86_64 Ubuntu 22.04 Base image of the bundled cn-bj2 catalogue


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that record every call and resource, and answer getImages with ``answer``."""

    def __init__(self, answer: dict[str, Any] | None = None, *, preview_unknown: bool = False) -> None:
        self.answer = answer if answer is not None else {"imageId": "uimage-mocked", "ids": ["uimage-mocked"]}
        self.preview_unknown = preview_unknown
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.before_answer: Callable[[pulumi.runtime.MockResourceArgs], None] | None = None

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(args)
        return (self.answer if args.token == TOKEN else {}), []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(args)
        if self.before_answer is not None:
            self.before_answer(args)
        if self.preview_unknown:
            return None, {}
        return f"{args.name}-id", dict(args.inputs)


def uhost(name: str, image_id: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> pulumi.CustomResource:
    """A stand-in for UCloud's UHost resource: a custom resource with an ``imageId`` input."""
    return pulumi.CustomResource("ucloud:index/instance:Instance", name, {"imageId": image_id}, opts)


def set_mocks(mocks: pulumi.runtime.Mocks, **options: Any) -> None:
    """``set_mocks`` from a clean slate; it needs a current event loop, which an earlier ``asyncio.run`` unsets."""
    _ensure_event_loop()
    pulumi.runtime.reset_options()
    pulumi.runtime.set_mocks(mocks, **options)


def resource_inputs(mocks: RecordingMocks, name: str) -> dict[str, Any]:
    return next(args.inputs for args in mocks.resources if args.name == name)


@pytest.fixture
def no_engine() -> Iterator[None]:
    """Plain Python: no monitor at all, whatever earlier tests configured."""
    pulumi.runtime.reset_options()
    yield
    pulumi.runtime.reset_options()


@pytest.fixture
def mocks() -> Iterator[RecordingMocks]:
    recording = RecordingMocks()
    set_mocks(recording, preview=False)
    yield recording
    pulumi.runtime.reset_options()


class _MonitorOverGrpc(resource_pb2_grpc.ResourceMonitorServicer):
    """The SDK's MockMonitor behind a real gRPC server: to the program, a resource monitor like the engine's."""

    def __init__(self, monitor: MockMonitor, context: contextvars.Context) -> None:
        self.monitor = monitor
        self.context = context  # the program's settings (stack, project), which the monitor reads for URNs

    def _run(self, method: str, request: Any) -> Any:
        return self.context.copy().run(getattr(self.monitor, method), request)

    def RegisterResource(self, request: Any, context: Any) -> Any:
        return self._run("RegisterResource", request)

    def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:
        return self._run("RegisterResourceOutputs", request)

    def Invoke(self, request: Any, context: Any) -> Any:
        return self._run("Invoke", request)

    def SupportsFeature(self, request: Any, context: Any) -> Any:
        answer = self._run("SupportsFeature", request)
        return resource_pb2.SupportsFeatureResponse(hasSupport=answer.hasSupport)


@pytest.fixture
def engine() -> Iterator[Callable[..., RecordingMocks]]:
    """Start a program 'under a real engine': the SDK's monitor is a gRPC stub to a server on loopback."""
    servers: list[grpc.Server] = []

    def start(*, preview: bool = False, preview_unknown: bool = False) -> RecordingMocks:
        recording = RecordingMocks(preview_unknown=preview_unknown)
        monitor = MockMonitor(recording)
        server = grpc.server(ThreadPoolExecutor(max_workers=4))
        port = server.add_insecure_port("127.0.0.1:0")
        pulumi.runtime.reset_options(
            project="project", stack="stack", monitor_address=f"127.0.0.1:{port}", preview=preview
        )
        deployment_info = getattr(monitor, "GetDeploymentInfo", None)  # newer SDKs read the features up front
        if deployment_info is not None:
            SETTINGS.monitor_features = set(deployment_info(empty_pb2.Empty()).supportedFeatures)
        servicer = _MonitorOverGrpc(monitor, contextvars.copy_context())
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(servicer, server)
        server.start()
        servers.append(server)
        return recording

    yield start
    for server in servers:
        server.stop(None)
    pulumi.runtime.reset_options()


# -- the signature ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [get_images, get_images_output])
def test_arguments_are_the_query_fields_then_settings_then_lock_and_opts(function: Callable[..., Any]) -> None:
    parameters = inspect.signature(function).parameters
    expected = [*ImageQuery.model_fields, "public_key", "private_key", "base_url", "timeout", "profile",
                "lock", "lockfile", "verify", "opts"]
    assert list(parameters) == expected
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    doc = function.__doc__ or ""
    for name, field in ImageQuery.model_fields.items():
        assert f":param {name}: {field.description}" in doc


# -- plain Python ----------------------------------------------------------------------------------------


def test_plain_python_returns_a_typed_result(ucloud_emulator_env: Emulator, no_engine: None) -> None:
    result = get_images(**UBUNTU)
    assert isinstance(result, GetImagesResult)
    assert result.image_id == UBUNTU_ID
    assert result.ids[0] == UBUNTU_ID and result.ids == [image.image_id for image in result.images]
    assert result.total_count == len(result.ids) > 1
    assert all(isinstance(image, Image) and image.state == "Available" for image in result.images)
    created = [image.create_time for image in result.images]
    assert created == sorted(created, reverse=True)
    assert result.region == "cn-bj2"
    assert (result.query.image_type, result.query.os_type, result.query.states) == ("Base", "Linux", ("Available",))


def test_the_result_is_awaitable_like_generated_results(ucloud_emulator_env: Emulator, no_engine: None) -> None:
    result = get_images(**UBUNTU)

    async def awaited() -> GetImagesResult:
        return await result

    loop = asyncio.new_event_loop()
    try:
        plain = loop.run_until_complete(awaited())
    finally:
        loop.close()
    assert type(plain) is GetImagesResult
    assert (plain.image_id, plain.ids, plain.total_count) == (result.image_id, result.ids, result.total_count)


def test_settings_arguments_come_before_stack_config_before_environment(
    monkeypatch: pytest.MonkeyPatch, no_engine: None
) -> None:
    only_centos = [record for record in Emulator().images() if record["ImageId"] == "uimage-f1chxn"]
    with Emulator() as full, Emulator(only_centos) as small:
        monkeypatch.setenv("UCLOUD_API_BASE_URL", small.base_url)
        monkeypatch.setenv("UCLOUD_PUBLIC_KEY", DEMO_PUBLIC_KEY)
        monkeypatch.setenv("UCLOUD_PRIVATE_KEY", "a-wrong-private-key")
        monkeypatch.setenv("UCLOUD_REGION", "cn-bj2")
        config = {"ucloud:baseUrl": full.base_url, "ucloud:privateKey": DEMO_PRIVATE_KEY}
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))

        assert get_images(**UBUNTU).image_id == UBUNTU_ID  # config's endpoint and key beat the environment's
        assert (full.request_count, small.request_count) == (1, 0)

        explicit = get_images(region="cn-bj2", image_type="Base", base_url=small.base_url)
        assert explicit.ids == ["uimage-f1chxn"]  # the argument beats the config
        assert small.request_count == 1


def test_bad_input_fails_before_any_request_naming_the_argument(
    ucloud_emulator_env: Emulator, no_engine: None
) -> None:
    with pytest.raises(InvalidQueryError, match=r"^Invalid os_type 'bsd': must be one of Linux, Windows\.$") as caught:
        get_images(region="cn-bj2", os_type="bsd")
    assert caught.value.field == "os_type"
    assert isinstance(caught.value, pulumi.RunError)
    with pytest.raises(InvalidQueryError, match="name_regex"):
        get_images_output(region="cn-bj2", name_regex="(unclosed")
    assert ucloud_emulator_env.request_count == 0


def test_timeout_is_a_setting_like_the_others(ucloud_emulator_env: Emulator, no_engine: None) -> None:
    assert get_images(**UBUNTU, timeout=5).image_id == UBUNTU_ID
    with pytest.raises(InvalidQueryError, match=r"^Invalid timeout -1\b") as caught:
        get_images(**UBUNTU, timeout=-1)
    assert caught.value.field == "timeout"


def test_lookup_failures_are_library_errors_that_pulumi_prints_as_one_sentence(
    ucloud_emulator_env: Emulator, no_engine: None
) -> None:
    with pytest.raises(NoImageFoundError) as none:
        get_images(region="cn-bj2", name_regex="^no such image")
    with pytest.raises(AmbiguousImageError) as several:
        get_images(region="cn-bj2", image_type="base", name_regex=r"^Ubuntu 22\.04")
    for caught in (none, several):
        error = caught.value
        assert isinstance(error, pulumi.RunError)  # Pulumi reports a RunError as its message, without a traceback
        assert type(error).__name__ == caught.type.__name__ and "\n" not in str(error)
        frames = [frame.filename for frame in __import__("traceback").extract_tb(error.__traceback__)]
        inner = ("_listing.py", "_transport.py", "_http.py", "_select.py", "_lookup.py")
        assert not any(name.endswith(inner) for name in frames)
    assert "name_regex='^no such image'" in str(none.value) and "cn-bj2" in str(none.value)
    assert UBUNTU_ID in several.value.image_ids
    revived = pickle.loads(pickle.dumps(several.value))  # pickles as the library's own class
    assert type(revived) is AmbiguousImageError and str(revived) == str(several.value)


# Each lists more images than the server's page cap below, so every round is several pages.
FIVE_QUERIES: list[dict[str, Any]] = [
    {"region": "cn-bj2", "image_type": "Base", "architecture": "x86_64"},
    {"region": "cn-bj2", "image_type": "Business", "architecture": "x86_64"},
    {"region": "cn-sh2", "image_type": "Base", "architecture": "x86_64"},
    {"region": "hk", "image_type": "Base", "architecture": "x86_64"},
    {"region": "sg", "image_type": "Base", "architecture": "x86_64"},
]
PAGE_CAP = 15


@pytest.fixture
def paging_emulator(monkeypatch: pytest.MonkeyPatch, start_emulator: Callable[[Emulator], Emulator]) -> Emulator:
    emulator = start_emulator(Emulator(max_limit=PAGE_CAP))
    monkeypatch.setenv("UCLOUD_API_BASE_URL", emulator.base_url)
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", DEMO_PUBLIC_KEY)
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", DEMO_PRIVATE_KEY)
    return emulator


def assert_one_round_per_query(emulator: Emulator, results: Sequence[GetImagesResult]) -> int:
    listed = [sum(1 for r in emulator.images(q["region"]) if r["ImageType"] == q["image_type"]) for q in FIVE_QUERIES]
    assert all(count > PAGE_CAP for count in listed)
    fetched = [(r.params["Region"], r.params["ImageType"], r.params["Offset"]) for r in emulator.requests]
    assert len(set(fetched)) == len(fetched)  # no page was read twice
    assert emulator.request_count == sum(math.ceil(count / PAGE_CAP) for count in listed)
    for index, query in enumerate(FIVE_QUERIES):
        assert len({results[i].image_id for i in range(index, 50, 5)}) == 1
        assert results[index].region == query["region"]
    return emulator.request_count


def test_fifty_calls_with_five_distinct_queries_cost_five_rounds_of_paging(
    paging_emulator: Emulator, no_engine: None
) -> None:
    calls = [FIVE_QUERIES[i % 5] for i in range(50)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda query: get_images(**query, most_recent=True), calls))
    assert assert_one_round_per_query(paging_emulator, results) == 7 + 2 + 6 + 4 + 3


def test_a_program_with_fifty_lookups_of_five_queries_costs_five_rounds(
    paging_emulator: Emulator, engine: Callable[..., RecordingMocks]
) -> None:
    engine()
    results: list[GetImagesResult] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        outputs = [get_images_output(**FIVE_QUERIES[i % 5], most_recent=True) for i in range(50)]
        return pulumi.Output.all(*outputs).apply(results.extend)

    program()
    assert assert_one_round_per_query(paging_emulator, results) == 22


def test_queries_differing_only_in_client_side_filters_share_the_pages(
    ucloud_emulator_env: Emulator, no_engine: None
) -> None:
    first = get_images(region="cn-bj2", image_type="base", name_regex=r"^Ubuntu 22\.04", architecture="x86_64",
                       most_recent=True)
    second = get_images(region="cn-bj2", image_type="base", name_regex=r"^CentOS 7\.2 ")
    third = get_images(region="cn-bj2", image_type="base", features=["CloudInit", "IPv6"], architecture="aarch64",
                       most_recent=True)
    assert (first.image_id, second.image_id) == (UBUNTU_ID, "uimage-f1chxn")
    assert "Aarch64_Type" in third.images[0].features
    assert ucloud_emulator_env.request_count == 1


def test_lock_reads_the_pinned_image_without_a_request(
    ucloud_emulator_env: Emulator, no_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ucloud-images.toml").write_text(
        '[selections.web]\nregion = "cn-bj2"\nimage_type = "base"\nos_type = "linux"\n'
        "name_regex = '^Ubuntu 22\\.04'\narchitecture = \"x86_64\"\nmost_recent = true\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    assert cli_main(["lock"]) == 0
    ucloud_emulator_env.reset_requests()
    result = get_images(**UBUNTU, lock="web", lockfile=tmp_path / "ucloud-images.lock.json")
    assert result.image_id == UBUNTU_ID
    assert ucloud_emulator_env.request_count == 0


# -- get_images_output outside mocks (no engine: the lookup runs in this process) -------------------------


def test_output_form_resolves_in_process(ucloud_emulator_env: Emulator, no_engine: None) -> None:
    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        output = get_images_output(region=pulumi.Output.from_input("cn-bj2"), image_type="base", os_type="linux",
                                   name_regex=r"^Ubuntu 22\.04", architecture="x86_64", most_recent=True)

        def check(result: GetImagesResult) -> None:
            assert isinstance(result, GetImagesResult) and result.image_id == UBUNTU_ID

        return output.apply(check)

    program()
    assert ucloud_emulator_env.request_count == 1


def test_unknown_input_gives_an_unknown_result_and_no_request(ucloud_emulator_env: Emulator, no_engine: None) -> None:
    seen: list[bool] = []

    @pulumi.runtime.test
    def program() -> Any:
        # The SDK's Input types leave out its own sentinel for a value unknown in a preview.
        unknown: pulumi.Output[str] = pulumi.Output.from_input(pulumi.UNKNOWN)  # type: ignore[arg-type]
        output = get_images_output(region=unknown, name_regex="^Ubuntu")

        async def check() -> None:
            seen.append(await output.is_known())

        return check()

    program()
    assert seen == [False]
    assert ucloud_emulator_env.request_count == 0


@pytest.mark.parametrize(("argument", "value"), [("name_regex", r"^Ubuntu 22\.04"), ("private_key", DEMO_PRIVATE_KEY)])
def test_a_secret_input_keeps_the_result_secret(
    ucloud_emulator_env: Emulator, no_engine: None, argument: str, value: str
) -> None:
    seen: list[tuple[bool, str | None]] = []

    @pulumi.runtime.test
    def program() -> Any:
        output = get_images_output(**{**UBUNTU, argument: pulumi.Output.secret(value)})

        async def check() -> None:
            result = await output.future()
            assert result is not None
            seen.append((await output.is_secret(), result.image_id))

        return check()

    program()
    assert seen == [(True, UBUNTU_ID)]


def test_output_form_takes_plain_invoke_options(ucloud_emulator_env: Emulator, no_engine: None) -> None:
    seen: list[str] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        output = get_images_output(**UBUNTU, opts=pulumi.InvokeOptions(version="1.2.3"))
        return output.image_id.apply(seen.append)

    program()
    assert seen == [UBUNTU_ID]


def test_bad_output_argument_fails_the_output_naming_it(ucloud_emulator_env: Emulator, no_engine: None) -> None:
    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        return get_images_output(region="cn-bj2", image_type=pulumi.Output.from_input("golden"))

    with pytest.raises(InvalidQueryError, match=r"^Invalid image_type 'golden': must be one of Base, Business, Custom"):
        program()
    assert ucloud_emulator_env.request_count == 0


# -- under mocks: Mocks.call answers, nothing is requested ------------------------------------------------


def test_mocks_answer_both_functions_and_no_request_is_made(
    ucloud_emulator_env: Emulator, mocks: RecordingMocks
) -> None:
    mocks.answer = {"imageId": "uimage-mock01", "ids": ["uimage-mock01", "uimage-mock00"], "totalCount": 2,
                    "region": "cn-bj2"}

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        plain = get_images(region="cn-bj2", os_type="linux", name_regex="^Ubuntu", most_recent=True)
        assert (plain.image_id, plain.total_count) == ("uimage-mock01", 2)
        assert plain.ids == ["uimage-mock01", "uimage-mock00"]
        output = get_images_output(region=pulumi.Output.from_input("cn-bj2"), image_type="custom",
                                   private_key="never-sent")
        host = uhost("web", output.image_id)
        return pulumi.Output.all(output.total_count, host.urn).apply(lambda values: None)

    program()
    assert [call.token for call in mocks.calls] == [TOKEN, TOKEN]
    assert mocks.calls[0].args == {"region": "cn-bj2", "osType": "Linux", "nameRegex": "^Ubuntu", "mostRecent": True}
    assert mocks.calls[1].args == {"region": "cn-bj2", "imageType": "Custom"}
    assert resource_inputs(mocks, "web")["imageId"] == "uimage-mock01"
    assert ucloud_emulator_env.request_count == 0


def test_mock_answer_images_may_use_any_spelling(mocks: RecordingMocks) -> None:
    mocks.answer = {
        "imageId": "uimage-b",
        "images": [
            {"imageId": "uimage-b", "imageName": "golden-web-2", "createTime": 2.0, "supportedGpuTypes": ["A100"],
             "priceSet": [{"chargeType": "Month", "price": 1.5}]},
            {"ImageId": "uimage-a", "ImageName": "golden-web-1", "CreateTime": 1, "MinimalCPU": "Intel"},
        ],
    }

    @pulumi.runtime.test
    def program() -> None:
        result = get_images(name_regex="^golden-web-", most_recent=True)
        assert result.ids == ["uimage-b", "uimage-a"] and result.total_count == 2
        newest, oldest = result.images
        assert (newest.image_name, newest.create_time, newest.supported_gpu_types) == ("golden-web-2", 2, ("A100",))
        assert (newest.price_set[0].charge_type, newest.price_set[0].price) == ("Month", 1.5)
        assert (oldest.image_id, oldest.minimal_cpu) == ("uimage-a", "Intel")

    program()


def test_a_mock_answer_without_image_id_is_one_clear_error(mocks: RecordingMocks) -> None:
    mocks.answer = {"ids": []}

    @pulumi.runtime.test
    def program() -> None:
        get_images(region="cn-bj2")

    with pytest.raises(ResponseFormatError, match=r"answer to ucloud-images:index:getImages .* imageId") as caught:
        program()
    assert isinstance(caught.value, pulumi.RunError)


def test_mocks_receive_invoke_options(mocks: RecordingMocks) -> None:
    @pulumi.runtime.test
    def program() -> pulumi.Output[str]:
        custom = pulumi.ProviderResource("ucloud-images", "custom-provider", {})
        get_images(region="cn-bj2", opts=pulumi.InvokeOptions(provider=custom))
        return get_images_output(region="cn-bj2", opts=pulumi.InvokeOptions(provider=custom)).image_id

    program()
    assert [call.token for call in mocks.calls] == [TOKEN, TOKEN]
    assert all("custom-provider" in call.provider for call in mocks.calls)


def test_under_mocks_depends_on_reaches_the_invoke_machinery(ucloud_emulator_env: Emulator) -> None:
    recording = RecordingMocks(preview_unknown=True)
    set_mocks(recording, preview=True)
    seen: list[bool] = []
    try:

        @pulumi.runtime.test
        def preview() -> Any:
            network = uhost("network", "unused")
            output = get_images_output(region="cn-bj2", opts=pulumi.InvokeOutputOptions(depends_on=[network]))

            async def check() -> None:
                seen.append(await output.is_known())

            return check()

        preview()
    finally:
        pulumi.runtime.reset_options()
    assert seen == [False]  # the network is still to be created, so the SDK did not invoke
    assert [args.name for args in recording.resources] == ["network"] and recording.calls == []


def test_unknown_input_under_mocks_in_preview_is_unknown_and_not_called(ucloud_emulator_env: Emulator) -> None:
    recording = RecordingMocks(preview_unknown=True)
    set_mocks(recording, preview=True)
    seen: list[bool] = []
    try:

        @pulumi.runtime.test
        def program() -> Any:
            network = pulumi.CustomResource("test:index:Network", "net", {"region": None})
            output = get_images_output(region=network.region)  # type: ignore[attr-defined]  # set at run time

            async def check() -> None:
                seen.append(await output.is_known())

            return check()

        program()
    finally:
        pulumi.runtime.reset_options()
    assert seen == [False]
    assert recording.calls == []
    assert ucloud_emulator_env.request_count == 0


def test_the_documented_user_program_unit_test() -> None:
    """The unit test shown in docs/pulumi.md, verbatim apart from the function names."""

    class Mocks(pulumi.runtime.Mocks):
        # The SDK takes a bare dict from call() too; its annotation names only the (outputs, failures) pair.
        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
            if args.token == "ucloud-images:index:getImages":
                return {"imageId": "uimage-test01", "ids": ["uimage-test01"], "totalCount": 1, "images": []}
            return {}

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", args.inputs

    set_mocks(Mocks(), preview=False)
    try:
        # --- the user's program (normally imported from __main__.py) ---
        image = get_images_output(region="cn-bj2", os_type="linux", name_regex=r"^Ubuntu 22\.04",
                                  architecture="x86_64", most_recent=True)
        host = pulumi.CustomResource("ucloud:index/instance:Instance", "web", {"imageId": image.image_id})

        @pulumi.runtime.test
        def test_host_boots_the_looked_up_image() -> Any:
            def check(image_id: str) -> None:
                assert image_id == "uimage-test01"

            return host.imageId.apply(check)  # type: ignore[attr-defined]  # outputs are set as attributes at run time

        test_host_boots_the_looked_up_image()
    finally:
        pulumi.runtime.reset_options()


# -- under a real engine (a gRPC resource monitor on loopback): the lookup runs in this process ------------


def test_under_an_engine_lookups_run_in_process_and_reach_the_hosts(
    ucloud_emulator_env: Emulator, engine: Callable[..., RecordingMocks]
) -> None:
    recording = engine()

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        image = get_images_output(**UBUNTU)
        plain = get_images(**UBUNTU)
        return pulumi.Output.all(uhost("web", image.image_id).urn, uhost("db", plain.image_id).urn)

    program()
    assert recording.calls == []  # the engine was not asked: no provider plugin is needed
    assert resource_inputs(recording, "web")["imageId"] == UBUNTU_ID
    assert resource_inputs(recording, "db")["imageId"] == UBUNTU_ID
    assert ucloud_emulator_env.request_count == 1


def test_under_an_engine_depends_on_holds_the_lookup_back(
    ucloud_emulator_env: Emulator, engine: Callable[..., RecordingMocks]
) -> None:
    engine(preview=True, preview_unknown=True)
    seen: list[bool] = []

    @pulumi.runtime.test
    def preview() -> Any:
        network = uhost("network", "unused")
        output = get_images_output(**UBUNTU, opts=pulumi.InvokeOutputOptions(depends_on=[network]))

        async def check() -> None:
            seen.append(await output.is_known())

        return check()

    preview()
    assert seen == [False]  # the resource is still to be created, so the lookup has not run
    assert ucloud_emulator_env.request_count == 0

    engine(preview=False)

    @pulumi.runtime.test
    def update() -> pulumi.Output[None]:
        network = uhost("network", "unused")
        output = get_images_output(**UBUNTU, opts=pulumi.InvokeOutputOptions(depends_on=network))
        return output.image_id.apply(lambda image_id: seen.append(image_id == UBUNTU_ID))

    update()
    assert seen == [False, True]
    assert ucloud_emulator_env.request_count == 1


def network_with_a_subnet() -> tuple[pulumi.ComponentResource, pulumi.CustomResource]:
    network = pulumi.ComponentResource("test:index:Network", "network")
    subnet = uhost("subnet", "unused", pulumi.ResourceOptions(parent=network))
    network.register_outputs({})
    return network, subnet


def test_under_an_engine_depends_on_a_component_waits_for_the_component_alone(
    ucloud_emulator_env: Emulator, engine: Callable[..., RecordingMocks]
) -> None:
    """The SDK has no public way to list a component's children: a component is waited for by its URN, and a
    lookup that must follow a child names the child (documented in docs/pulumi.md)."""
    engine(preview=True, preview_unknown=True)
    seen: list[bool] = []

    @pulumi.runtime.test
    def preview() -> Any:
        network, subnet = network_with_a_subnet()
        alone = get_images_output(**UBUNTU, opts=pulumi.InvokeOutputOptions(depends_on=[network]))
        with_child = get_images_output(**UBUNTU, opts=pulumi.InvokeOutputOptions(depends_on=[network, subnet]))

        async def check() -> None:
            seen.extend([await alone.is_known(), await with_child.is_known()])

        return check()

    preview()
    assert seen == [True, False]  # the subnet is still to be created, so only the lookup naming it waits
    assert ucloud_emulator_env.request_count == 1


def test_under_an_engine_stack_config_supplies_the_settings(
    ucloud_emulator: Emulator, engine: Callable[..., RecordingMocks], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({
        "ucloud:region": "cn-bj2", "ucloud:baseUrl": ucloud_emulator.base_url,
        "ucloud:publicKey": DEMO_PUBLIC_KEY, "ucloud:privateKey": DEMO_PRIVATE_KEY,
    }))
    recording = engine()

    @pulumi.runtime.test
    def program() -> pulumi.Output[str]:
        image = get_images_output(image_type="base", name_regex=r"^CentOS 7\.2 ")
        return uhost("legacy", image.image_id).urn

    program()
    assert resource_inputs(recording, "legacy")["imageId"] == "uimage-f1chxn"


def test_under_an_engine_a_failed_lookup_fails_the_program_with_a_run_error(
    ucloud_emulator_env: Emulator, engine: Callable[..., RecordingMocks]
) -> None:
    engine()

    @pulumi.runtime.test
    def program() -> pulumi.Output[str]:
        return get_images_output(region="cn-bj2", name_regex="^no such image").image_id

    with pytest.raises(NoImageFoundError, match=r"^No image in region cn-bj2 matches name_regex='\^no such") as caught:
        program()
    assert isinstance(caught.value, pulumi.RunError)


def test_the_result_is_a_view_over_the_librarys_result() -> None:
    images = [Image.model_validate({"ImageId": f"uimage-{n}", "ImageName": "golden", "State": "Available",
                                    "CreateTime": n}) for n in (1, 2)]
    found = select(images, ImageQuery(most_recent=True), "cn-bj2")
    view = AwaitableGetImagesResult(found)
    assert (view.image_id, view.ids, view.total_count) == ("uimage-2", ["uimage-2", "uimage-1"], 2)
    assert view.region == "cn-bj2"
    assert view.images == list(found.images) and view.query is found.query and view.warnings == []
    awaited = view.__await__()
    with pytest.raises(StopIteration) as done:
        next(awaited)
    assert type(done.value.value) is GetImagesResult and done.value.value.ids == view.ids
    assert GetImagesResult(found.model_copy(update={"region": ""})).region is None  # a mock that named no region


def test_the_result_can_be_built_from_its_fields_as_pulumi_builds_output_types() -> None:
    from pulumi._types import output_type_from_dict  # how invoke(..., typ=GetImagesResult) builds its result

    image = Image.model_validate({"ImageId": "uimage-a", "ImageName": "golden", "State": "Available"})
    built = output_type_from_dict(GetImagesResult, {
        "imageId": "uimage-a", "images": [image], "ids": ["uimage-a"], "totalCount": 1, "region": "cn-bj2",
        "query": ImageQuery(most_recent=True),
    })
    assert isinstance(built, GetImagesResult)
    assert (built.image_id, built.ids, built.total_count, built.region) == ("uimage-a", ["uimage-a"], 1, "cn-bj2")
    by_keyword = GetImagesResult(image_id="uimage-a", images=[image], ids=["uimage-a"], total_count=1, region=None,
                                 query=ImageQuery())
    assert (by_keyword.image_id, by_keyword.region, by_keyword.images[0].image_name) == ("uimage-a", None, "golden")
    with pytest.raises(ValueError, match="image_id"):
        GetImagesResult(ids=["uimage-a"], total_count=1)
