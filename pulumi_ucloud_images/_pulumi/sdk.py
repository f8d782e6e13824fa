"""The one module that knows more of the Pulumi SDK than its documented API, each assumption tested by name.

The package supports ``pulumi>=3.200,<4``. Two things have no documented API in that range, and both are named
here so that a release that moves them fails one test in ``tests/pulumi/test_sdk_assumptions.py``, not a user:

- whether the program runs under ``pulumi.runtime.set_mocks`` (the SDK keeps the resource monitor in
  ``pulumi.runtime.settings``: ``None`` without an engine, a gRPC stub under one, a ``MockMonitor`` under mocks);
- the sentinel the engine's property values carry for a value not known yet (``pulumi.runtime.rpc.UNKNOWN``),
  which the provider plugin reads and writes.

Everything else (dependencies of an invoke, errors reported without a trace) uses the SDK's public API.
"""

from __future__ import annotations

import pulumi
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor

from .._settings.sources import ConfigSource

__all__ = ["UNKNOWN", "mocks_are_set", "stack_config"]

UNKNOWN: str = rpc.UNKNOWN
"""The engine's marker for a property value not known yet (during a preview)."""


def mocks_are_set() -> bool:
    """True under ``pulumi.runtime.set_mocks``, where the user's ``Mocks.call`` answers getImages."""
    return isinstance(settings.get_monitor(), MockMonitor)


def stack_config() -> ConfigSource:
    """The running program's stack config ``ucloud:*`` as a settings source, which the Pulumi faces hand to the
    core (the core itself never imports pulumi). Outside a program it holds nothing."""
    return ConfigSource(lambda key: pulumi.runtime.get_config(key) or None)  # no name holds a value: it may be the key
