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

PUBLIC_NAMES = {
    # errors
    "UCloudImagesError",
    "InvalidQueryError",
    "CredentialsError",
    "ProfileError",
    "LockfileError",
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
    # plain Python
    "ImageQuery",
    "Image",
    "LookupResult",
    "Settings",
    "resolve_settings",
    "Client",
    "RetryPolicy",
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


def test_every_error_class_of_the_package_is_exported() -> None:
    from pulumi_ucloud_images import _errors

    defined = {name for name, value in vars(_errors).items()
               if isinstance(value, type) and issubclass(value, Exception) and not name.startswith("_")}
    assert defined <= set(ERRORS)


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


def test_the_errors_form_one_hierarchy_with_exit_codes() -> None:
    api = pulumi_ucloud_images
    exit_codes = {
        api.InvalidQueryError: 2, api.LockfileError: 2, api.NoImageFoundError: 3, api.AmbiguousImageError: 4,
        api.CredentialsError: 5, api.TransportError: 5, api.ResponseFormatError: 5, api.APIError: 5,
    }
    for error, code in exit_codes.items():
        assert issubclass(error, api.UCloudImagesError)
        assert error.exit_code == code
    for transport_error in (api.ResponseFormatError, api.ConnectionFailedError, api.ResponseTimeoutError,
                            api.RedirectError, api.ResponseTooLargeError, api.InconsistentListingError):
        assert issubclass(transport_error, api.TransportError) and transport_error.exit_code == 5
    assert issubclass(api.InvalidQueryError, ValueError)
    assert issubclass(api.NoImageFoundError, LookupError) and issubclass(api.AmbiguousImageError, LookupError)


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

