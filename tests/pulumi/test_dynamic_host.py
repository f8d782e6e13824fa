"""PinnedImage through the SDK's dynamic-provider host, spoken to over gRPC as the engine does.

The engine starts ``python -u -m pulumi.dynamic ENGINE_ADDRESS``, reads the port from the first line of
stdout, sends ``Configure`` with the stack config, then drives the provider with the pickled provider in the
``__provider`` property of every request. This host never dials the engine address back (its ``__main__``
reads no argument), so no engine is needed here; the subprocess gets no ``UCLOUD_*`` variables, so the
settings it uses can only come from the ``Configure`` call.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._pulumi.pinned_image import PinnedImageProvider

pytestmark = pytest.mark.slow

URN = "urn:pulumi:dev::golden::pulumi-python:dynamic/ucloud-images:PinnedImage::web-golden"
GOLDEN = {"image_type": "custom", "name_regex": r"^golden-web-\d", "most_recent": True}
PINNED, NEWER = "uimage-gw0314", "uimage-gw0321n"


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    loop = asyncio.new_event_loop()  # as the host does; asyncio.run would leave no current loop behind
    try:
        serialized: struct_pb2.Struct = loop.run_until_complete(rpc.serialize_properties(values, {}))
    finally:
        loop.close()
    return serialized


def plain(properties: struct_pb2.Struct) -> dict[str, Any]:
    values: dict[str, Any] = rpc.deserialize_properties(properties)
    return values


@pytest.fixture
def host() -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    assert not any(name.startswith("UCLOUD_") for name in os.environ)  # the conftest clears them
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield provider_pb2_grpc.ResourceProviderStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_the_provider_runs_pickled_inside_the_sdk_host(
    host: provider_pb2_grpc.ResourceProviderStub, ucloud_emulator: Emulator
) -> None:
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": DEMO_PRIVATE_KEY}
    host.Configure(provider_pb2.ConfigureRequest(args=struct({
        "ucloud:region": "cn-bj2", "ucloud:baseUrl": ucloud_emulator.base_url,
        "ucloud:publicKey": DEMO_PUBLIC_KEY, "ucloud:privateKey": secret,
    })))
    pickled = serialize_provider(PinnedImageProvider())

    def check(**news: Any) -> provider_pb2.CheckResponse:
        checked: provider_pb2.CheckResponse = host.Check(  # the stub's calls are untyped (grpc has no stubs)
            provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct({**news, "__provider": pickled})))
        return checked

    bad = check(image_type="golden", repin=3)
    assert sorted((f.property, f.reason) for f in bad.failures) == [
        ("image_type", "Invalid image_type 'golden': must be one of Base, Business, Custom."),
        ("repin", "Invalid repin 3: must be a string (any new value re-pins)."),  # a float on the wire, shown as 3
    ]

    checked = check(**GOLDEN)
    assert list(checked.failures) == []
    inputs = plain(checked.inputs)
    assert inputs["region"] == "cn-bj2" and inputs["image_type"] == "Custom"

    created = host.Create(provider_pb2.CreateRequest(urn=URN, properties=checked.inputs))
    outputs = plain(created.properties)
    assert created.id == PINNED
    assert (outputs["image_id"], outputs["latest_image_id"], outputs["image_name"]) == (
        PINNED, PINNED, "golden-web-2026.03.14")
    assert outputs["__provider"] == pickled
    assert DEMO_PRIVATE_KEY not in repr(outputs)

    def diff(news: provider_pb2.CheckResponse) -> provider_pb2.DiffResponse:
        diffed: provider_pb2.DiffResponse = host.Diff(
            provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=news.inputs))
        return diffed

    record = next(image for image in ucloud_emulator.images(include_private=True) if image["ImageId"] == PINNED)
    ucloud_emulator.publish({**record, "ImageId": NEWER, "CreateTime": record["CreateTime"] + 7 * 86400})
    assert diff(check(**GOLDEN)).changes == provider_pb2.DiffResponse.DIFF_NONE

    repinned = check(**GOLDEN, zone="cn-bj2-02", repin="2")
    changed = diff(repinned)
    assert changed.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(changed.replaces) == ["zone", "repin", "image_id"]

    read = host.Read(provider_pb2.ReadRequest(id=created.id, urn=URN, properties=created.properties))
    refreshed = plain(read.properties)
    assert (refreshed["image_id"], refreshed["latest_image_id"]) == (PINNED, NEWER)

    updated = host.Update(provider_pb2.UpdateRequest(id=created.id, urn=URN, olds=created.properties,
                                                     news=repinned.inputs))
    assert plain(updated.properties)["image_id"] == NEWER

    ucloud_emulator.remove(PINNED)
    with pytest.raises(grpc.RpcError) as failed:
        host.Read(provider_pb2.ReadRequest(id=created.id, urn=URN, properties=created.properties))
    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    message = failed.value.details().strip().splitlines()[-1]
    # The host words the failure its own way (newer SDKs name the exception's class, older ones gRPC's
    # "Exception calling application"); the library's sentence is the rest of the line either way.
    assert message.endswith(
        f": The pinned image {PINNED} no longer exists in region "
        f"cn-bj2; set a new repin value or change the query, then run 'pulumi up' to pin {NEWER}."
    )
    assert DEMO_PRIVATE_KEY not in failed.value.details()

    before = ucloud_emulator.request_count
    host.Delete(provider_pb2.DeleteRequest(id=created.id, urn=URN, properties=created.properties))
    assert ucloud_emulator.request_count == before
