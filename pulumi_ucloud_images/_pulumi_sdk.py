"""What this package takes from the Pulumi SDK beyond its public API, in one place.

``pyproject.toml`` bounds ``pulumi`` to the versions the engine tier (``tests/engine``) has run; before the bound
moves, check each name here against the new SDK. Everything else uses the SDK's public API.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime._depends_on import _resolve_depends_on
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto.resource_pb2_grpc import ResourceMonitorStub
from pulumi.runtime.rpc import UNKNOWN
from pulumi.runtime.settings import get_monitor

from ._sources import ConfigSource

__all__ = ["GRPC_SERVER_OPTIONS", "UNKNOWN", "custom_dependencies", "mocks_are_set", "stack_config"]

# The SDK's own gRPC options (message size limits the engine relies on), for the provider plugin's server.
GRPC_SERVER_OPTIONS: list[tuple[str, Any]] = list(_GRPC_CHANNEL_OPTIONS)


def mocks_are_set() -> bool:
    """True under ``pulumi.runtime.set_mocks``.

    The SDK keeps the resource monitor in its runtime settings: ``None`` with no engine (plain Python), a
    gRPC ``ResourceMonitorStub`` under a real engine (CLI or Automation API), and an in-process object (a
    ``MockMonitor``) under ``set_mocks``.
    """
    monitor = get_monitor()
    return monitor is not None and not isinstance(monitor, ResourceMonitorStub)


async def custom_dependencies(opts: pulumi.InvokeOutputOptions) -> list[pulumi.CustomResource]:
    """The custom resources ``opts.depends_on`` stands for: a component stands for its custom descendants.

    As the SDK itself expands an invoke's dependencies. A ``DependencyResource`` (a custom resource known only
    by its URN) has no ID to wait for and is left out.
    """
    expanded = await rpc._expand_dependencies(await _resolve_depends_on(opts._depends_on_list()), None)
    return [r for r in expanded.values() if isinstance(r, pulumi.CustomResource) and r.__dict__.get("id") is not None]


def stack_config() -> ConfigSource:
    """The running program's stack config ``ucloud:*`` as a settings source, which the Pulumi faces hand to the
    core (the core itself never imports pulumi). Outside a program it holds nothing."""
    return ConfigSource(lambda key: pulumi.runtime.get_config(key) or None)  # no name holds a value: it may be the key
