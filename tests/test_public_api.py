"""The public surface: exactly these names, each importable, and a light import (no Pulumi until asked)."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.resources
import subprocess
import sys

import pytest

import pulumi_ucloud_images
from pulumi_ucloud_images._cli.common import exit_code_for

PUBLIC_NAMES = {
    # errors
    "UCloudImagesError",
    "InvalidQueryError",
    "CredentialsError",
    "ProfileError",
    "LockfileError",
    "RevokedImageError",
    "TransportError",
    "ResponseFormatError",
    "ConnectionFailedError",
    "ResponseTimeoutError",
    "RedirectError",
    "ResponseTooLargeError",
    "InconsistentListingError",
    "APIError",
    "NoImageFoundError",
    "AmbiguousImageError",
    "SettingsNotKnownError",
    "ProviderError",
    "PolicyConfigError",
    # plain Python
    "ImageQuery",
    "Image",
    "LookupResult",
    "Settings",
    "resolve_settings",
    "Client",
    "RetryPolicy",
    "Transport",
    "HTTPTransport",
    "lookup_images",
    "find_images",
    "list_images",
    "__version__",
    # Pulumi-facing
    "get_images",
    "get_images_output",
    "GetImagesResult",
    "PinnedImage",
}
# Everything but the errors and the version is imported on first use.
LAZY_NAMES = {name for name in PUBLIC_NAMES if not name.endswith("Error")} - {"__version__"}


def test_all_is_pinned_exactly() -> None:
    names = pulumi_ucloud_images.__all__
    assert len(names) == len(set(names)), "no name is listed twice"
    assert set(names) == PUBLIC_NAMES


@pytest.mark.parametrize("name", sorted(PUBLIC_NAMES - LAZY_NAMES))
def test_every_eager_name_resolves(name: str) -> None:
    assert getattr(pulumi_ucloud_images, name) is not None


ERRORS = sorted(name for name in PUBLIC_NAMES if name.endswith("Error"))


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_is_named_where_users_import_it(name: str) -> None:
    error = getattr(pulumi_ucloud_images, name)
    assert issubclass(error, pulumi_ucloud_images.UCloudImagesError)
    assert (error.__module__, error.__qualname__) == ("pulumi_ucloud_images", name)
    assert getattr(importlib.import_module(error.__module__), error.__qualname__) is error  # what pickle looks up


def test_every_error_class_of_the_package_is_exported_from_the_errors_module() -> None:
    """Walks every module of the package: an error a user may meet is one they can import and catch."""
    import pkgutil

    from pulumi_ucloud_images import _errors

    found: dict[str, type] = {}
    for module in pkgutil.walk_packages(pulumi_ucloud_images.__path__, "pulumi_ucloud_images."):
        if module.name.startswith(("pulumi_ucloud_images._cli", "pulumi_ucloud_images.__main__")):
            continue  # the command's own usage errors never leave it
        for name, value in vars(importlib.import_module(module.name)).items():
            if isinstance(value, type) and issubclass(value, pulumi_ucloud_images.UCloudImagesError):
                found[name] = value
    assert set(found) <= set(ERRORS)
    assert all(name in vars(_errors) for name in found)


def test_the_names_are_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unbound at import (as a fresh import leaves them), each is bound to its object on first use."""
    assert set(pulumi_ucloud_images._LAZY) == LAZY_NAMES
    assert set(dir(pulumi_ucloud_images)) >= LAZY_NAMES
    package = vars(pulumi_ucloud_images)
    for name in sorted(LAZY_NAMES):
        monkeypatch.delitem(package, name, raising=False)
        value = getattr(pulumi_ucloud_images, name)
        assert value.__name__ == name and callable(value)
        assert package[name] is value  # bound, so later uses skip the module's __getattr__
        assert getattr(pulumi_ucloud_images, name) is value


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'get_image'"):
        pulumi_ucloud_images.get_image  # noqa: B018


def test_the_errors_form_one_hierarchy() -> None:
    api = pulumi_ucloud_images
    for name in ERRORS:
        assert issubclass(getattr(api, name), api.UCloudImagesError)
    for transport_error in (api.ResponseFormatError, api.ConnectionFailedError, api.ResponseTimeoutError,
                            api.RedirectError, api.ResponseTooLargeError, api.InconsistentListingError):
        assert issubclass(transport_error, api.TransportError)
    assert issubclass(api.InvalidQueryError, ValueError) and issubclass(api.ProfileError, api.CredentialsError)
    assert issubclass(api.NoImageFoundError, LookupError) and issubclass(api.AmbiguousImageError, LookupError)


def test_the_command_maps_every_error_to_its_exit_code_and_the_library_carries_none() -> None:
    api = pulumi_ucloud_images
    expected = {"InvalidQueryError": 2, "ProfileError": 2, "LockfileError": 2, "RevokedImageError": 2,
                "PolicyConfigError": 2, "NoImageFoundError": 3, "AmbiguousImageError": 4}
    for name in ERRORS:
        error = getattr(api, name)
        instance = error.__new__(error)
        assert exit_code_for(instance) == expected.get(name, 5), name
        assert not hasattr(instance, "exit_code"), name


def test_every_error_survives_pickling_with_its_details() -> None:
    import pickle

    api = pulumi_ucloud_images
    errors = [
        api.APIError(172, "User not exist", action="DescribeImage", request_id="req-1"),
        api.AmbiguousImageError("2 images match.", image_ids=["uimage-a", "uimage-b"]),
        api.InvalidQueryError("Invalid os_type 'bsd'.", field="os_type"),
        api.CredentialsError("No UCloud public key was found.", setting="public_key"),
        api.ResponseFormatError("Not JSON.", action="DescribeImage", request_id="req-2"),
        api.NoImageFoundError("No image."),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (str(copy), vars(copy)) == (str(error), vars(error))


def test_the_version_is_the_distributions() -> None:
    assert pulumi_ucloud_images.__version__ == importlib.metadata.version("pulumi-ucloud-images")


def test_the_package_is_typed() -> None:
    assert importlib.resources.files("pulumi_ucloud_images").joinpath("py.typed").is_file()


def _imported_after(code: str, roots: tuple[str, ...]) -> list[str]:
    """The modules under ``roots`` that a fresh interpreter has imported after running ``code``."""
    code += f"\nimport sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {roots!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return list(ast.literal_eval(done.stdout.strip()))


@pytest.mark.slow
def test_importing_the_package_does_not_import_pulumi_or_grpc() -> None:
    code = "import pulumi_ucloud_images\nfrom pulumi_ucloud_images import lookup_images, ImageQuery, Client"
    assert _imported_after(code, ("pulumi", "grpc")) == []


@pytest.mark.slow
def test_importing_the_package_imports_only_its_errors() -> None:
    """The plugin's console script imports the package first: that must cost next to nothing."""
    heavy = ("pulumi", "grpc", "pydantic", "requests", "urllib3", "regex")
    assert _imported_after("import pulumi_ucloud_images", heavy) == []


def test_find_images_is_a_deprecated_alias_of_list_images(ucloud_emulator_env: object) -> None:
    with pytest.warns(DeprecationWarning, match="use list_images"):
        found = pulumi_ucloud_images.find_images(image_id="uimage-f1chxn")
    assert [image.image_id for image in found] == [
        image.image_id for image in pulumi_ucloud_images.list_images(image_id="uimage-f1chxn")] == ["uimage-f1chxn"]

