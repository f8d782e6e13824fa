"""The ``ucloud_images`` pytest plugin: the emulator's fixtures, registered when the package is installed.

Every pytest run of a project that has this package installed loads the plugin, so it costs nothing until a test
asks for a fixture: this module imports no more than pytest (when there is one), and each fixture imports the
emulator when it runs. ``pulumi_ucloud_images.testing`` documents and re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    import pytest

    from .service import Emulator

__all__ = ["ucloud_emulator", "ucloud_emulator_env"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _fixture(function: _F) -> _F:
    """``pytest.fixture`` when pytest is there; the plain function otherwise, so importing never fails."""
    try:
        import pytest
    except ModuleNotFoundError:  # pragma: no cover - the plugin is only loaded by pytest
        return function
    return cast(_F, pytest.fixture(function))


@_fixture
def ucloud_emulator() -> Iterator[Emulator]:
    """A started emulator with the bundled catalogue and the demo keys; stopped after the test."""
    from .service import Emulator

    with Emulator() as emulator:
        yield emulator


@_fixture
def ucloud_emulator_env(
    ucloud_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulator]:
    """The emulator, with the ``UCLOUD_*`` environment pointing at it and an empty HOME, for the test."""
    from .._settings.profiles import SHARED_FILE_VARIABLES
    from .._settings.sources import SETTINGS
    from .catalog import DEMO_REGION
    from .service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY

    for name in (*(setting.variable for setting in SETTINGS.values()), *SHARED_FILE_VARIABLES):
        monkeypatch.delenv(name, raising=False)  # every setting of the developer's shell, then the emulator's
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("ucloud-emulator-home")))
    monkeypatch.setenv("UCLOUD_API_BASE_URL", ucloud_emulator.base_url)
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", DEMO_PUBLIC_KEY)
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", DEMO_PRIVATE_KEY)
    monkeypatch.setenv("UCLOUD_REGION", DEMO_REGION)
    yield ucloud_emulator
