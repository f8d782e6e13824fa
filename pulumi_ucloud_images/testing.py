"""The bundled DescribeImage emulator and pytest fixtures for offline tests against it.

``Emulator`` (with its demo key pair ``DEMO_PUBLIC_KEY`` / ``DEMO_PRIVATE_KEY`` and ``DEMO_REGION``) is
public here: ``from pulumi_ucloud_images.testing import Emulator``.

Two ways to reach it. Started (``with Emulator() as emulator``, or the fixtures below), it is a real HTTP
server on loopback at ``emulator.base_url``. Not started, ``emulator.transport()`` is a transport for
``Client(settings, transport=...)`` that answers from the same request handling in-process, with no socket:
signature checks, RetCodes, filters, paging, injected faults, latency and the request log behave as over
HTTP, and the settings' ``base_url`` is never contacted::

    settings = Settings(region=DEMO_REGION, public_key=DEMO_PUBLIC_KEY, private_key=DEMO_PRIVATE_KEY)
    with Client(settings, transport=Emulator().transport()) as client:
        lookup_images(client=client, name_regex=r"^CentOS 7\\.2 ")

Installing the package registers the ``ucloud_images`` pytest plugin (``_emulator/fixtures.py``), so any test
suite can ask for these fixtures without a conftest; a suite that asks for none pays nothing for it (the plugin
imports the emulator only when a fixture runs):

``ucloud_emulator``
    A running :class:`~pulumi_ucloud_images._emulator.service.Emulator` serving the bundled catalogue on
    127.0.0.1, stopped after the test. It accepts the demo key pair (``DEMO_PUBLIC_KEY`` /
    ``DEMO_PRIVATE_KEY``); use its ``inject()``, ``publish()``, ``latency_ms`` and ``requests`` to shape and
    inspect what your code sees.

``ucloud_emulator_env``
    The same emulator, with ``UCLOUD_API_BASE_URL``, ``UCLOUD_PUBLIC_KEY``, ``UCLOUD_PRIVATE_KEY`` and
    ``UCLOUD_REGION`` (``cn-bj2``) set for the test, and nothing of the developer's own settings in the way:
    ``UCLOUD_PROJECT_ID``, ``UCLOUD_PROFILE`` and ``UCLOUD_SHARED_*_FILE`` are cleared and ``HOME`` is an
    empty temporary directory, so neither a project from the shell nor an active ``~/.ucloud`` profile (with
    its own project, which the emulator would refuse) leaks in. Code that reads its settings from the
    environment needs nothing else::

        def test_web_host_uses_ubuntu(ucloud_emulator_env):
            from pulumi_ucloud_images import lookup_images

            result = lookup_images(os_type="linux", name_regex=r"^Ubuntu 22\\.04", architecture="x86_64",
                                   most_recent=True)
            assert result.image_id == "uimage-ub2205"

The module imports without pytest installed; only the fixtures themselves need it.
"""

from __future__ import annotations

from ._emulator.catalog import DEMO_REGION
from ._emulator.fixtures import ucloud_emulator, ucloud_emulator_env
from ._emulator.server import InProcessTransport
from ._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

__all__ = [
    "DEMO_PRIVATE_KEY",
    "DEMO_PUBLIC_KEY",
    "DEMO_REGION",
    "Emulator",
    "InProcessTransport",
    "ucloud_emulator",
    "ucloud_emulator_env",
]
