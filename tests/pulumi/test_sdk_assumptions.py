"""What ``_pulumi_sdk`` assumes of the Pulumi SDK beyond its documented API: one test per assumption, so a
release that moves one fails here by name (CI runs these at both ends of ``pulumi>=3.200,<4``)."""

from __future__ import annotations

import asyncio
import json

import pulumi
import pulumi.runtime
import pytest
from google.protobuf import struct_pb2

from pulumi_ucloud_images._pulumi import sdk as _pulumi_sdk


class _NoMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, object]]:
        return None, {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, object], list[tuple[str, str]]]:
        return {}, []


def test_the_unknown_sentinel_is_the_one_of_the_provider_protocol() -> None:
    """Unknown property values travel as this fixed string in the engine's gRPC protocol (``UnknownStringValue``
    of Pulumi's provider protocol), which the plugin reads and writes."""
    assert _pulumi_sdk.UNKNOWN == "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    struct = struct_pb2.Struct()
    struct.update({"imageId": _pulumi_sdk.UNKNOWN})
    deserialized = pulumi.runtime.rpc.deserialize_properties(struct, keep_unknowns=True)
    assert type(deserialized["imageId"]).__name__ == "Unknown"  # the SDK reads it as a value not known yet


def test_mocks_are_seen_where_set_and_only_there() -> None:
    pulumi.runtime.reset_options()
    assert not _pulumi_sdk.mocks_are_set()  # plain Python: no monitor
    try:
        asyncio.set_event_loop(asyncio.new_event_loop())
        pulumi.runtime.set_mocks(_NoMocks(), preview=False)
        assert _pulumi_sdk.mocks_are_set()
    finally:
        pulumi.runtime.reset_options()
    pulumi.runtime.reset_options(project="p", stack="s", monitor_address="127.0.0.1:1")
    try:
        assert not _pulumi_sdk.mocks_are_set()  # an engine's monitor (a gRPC stub), even one not listening
    finally:
        pulumi.runtime.reset_options()


def test_the_stack_config_source_reads_the_programs_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"ucloud:region": "cn-sh2"}))
    pulumi.runtime.reset_options()
    try:
        assert _pulumi_sdk.stack_config().read("region") == "cn-sh2"
    finally:
        pulumi.runtime.reset_options()
