"""Find UCloud image IDs from declared filters, strictly: one match, or a clear error.

Only the errors are imported with the package; every other name on first use. So plain-Python and command-line
use never pay for importing Pulumi, and the provider plugin answers its first call before importing pydantic,
requests or the Pulumi SDK (importing this package is the first thing its console script does).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._errors import (
    AmbiguousImageError,
    APIError,
    ConnectionFailedError,
    CredentialsError,
    InconsistentListingError,
    InvalidQueryError,
    LockfileError,
    NoImageFoundError,
    PolicyConfigError,
    ProfileError,
    ProviderError,
    RedirectError,
    ResponseFormatError,
    ResponseTimeoutError,
    ResponseTooLargeError,
    RevokedImageError,
    SettingsNotKnownError,
    TransportError,
    UCloudImagesError,
)
from ._version import __version__

# Errors are caught by users, who see them in tracebacks: name them where users import them from, as httpx does.
for _error in (
    AmbiguousImageError, APIError, ConnectionFailedError, CredentialsError, InconsistentListingError,
    InvalidQueryError, LockfileError, NoImageFoundError, PolicyConfigError, ProfileError, ProviderError, RedirectError,
    ResponseFormatError, ResponseTimeoutError, ResponseTooLargeError, RevokedImageError, SettingsNotKnownError,
    TransportError, UCloudImagesError,
):
    _error.__module__ = __name__
del _error

if TYPE_CHECKING:
    from ._api.calls import Transport
    from ._api.client import Client
    from ._api.http import HTTPTransport
    from ._api.image import Image
    from ._api.retry import RetryPolicy
    from ._lookup import find_images, list_images, lookup_images
    from ._pulumi.functions import GetImagesResult, get_images, get_images_output
    from ._pulumi.pinned_image import PinnedImage
    from ._query import ImageQuery
    from ._select import LookupResult
    from ._settings.settings import Settings, resolve_settings

# Imported on first use so that `import pulumi_ucloud_images` stays light.
_LAZY: dict[str, str] = {
    "Image": "._api.image",
    "Client": "._api.client",
    "Transport": "._api.calls",
    "HTTPTransport": "._api.http",
    "find_images": "._lookup",
    "list_images": "._lookup",
    "lookup_images": "._lookup",
    "ImageQuery": "._query",
    "RetryPolicy": "._api.retry",
    "LookupResult": "._select",
    "Settings": "._settings.settings",
    "resolve_settings": "._settings.settings",
    "GetImagesResult": "._pulumi.functions",
    "get_images": "._pulumi.functions",
    "get_images_output": "._pulumi.functions",
    "PinnedImage": "._pulumi.pinned_image",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "APIError",
    "AmbiguousImageError",
    "Client",
    "ConnectionFailedError",
    "CredentialsError",
    "GetImagesResult",
    "HTTPTransport",
    "Image",
    "ImageQuery",
    "InconsistentListingError",
    "InvalidQueryError",
    "LockfileError",
    "LookupResult",
    "NoImageFoundError",
    "PinnedImage",
    "PolicyConfigError",
    "ProfileError",
    "ProviderError",
    "RedirectError",
    "ResponseFormatError",
    "ResponseTimeoutError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "RevokedImageError",
    "Settings",
    "SettingsNotKnownError",
    "Transport",
    "TransportError",
    "UCloudImagesError",
    "__version__",
    "find_images",
    "get_images",
    "get_images_output",
    "list_images",
    "lookup_images",
    "resolve_settings",
]
