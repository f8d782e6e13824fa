"""Find UCloud image IDs from declared filters, strictly: one match, or a clear error.

The Pulumi-facing names (``get_images``, ``get_images_output``, ``GetImagesResult``, ``PinnedImage``) are
imported lazily, so plain-Python and command-line use never pay for importing Pulumi.
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
from ._http import HTTPTransport
from ._image import Image
from ._listing import Client
from ._lookup import find_images, list_images, lookup_images
from ._query import ImageQuery
from ._retry import RetryPolicy
from ._select import LookupResult
from ._settings import Settings, resolve_settings
from ._transport import Transport
from ._version import __version__

# Errors are caught by users, who see them in tracebacks: name them where users import them from, as httpx does.
for _error in (
    AmbiguousImageError, APIError, ConnectionFailedError, CredentialsError, InconsistentListingError,
    InvalidQueryError, LockfileError, NoImageFoundError, ProfileError, ProviderError, RedirectError,
    ResponseFormatError, ResponseTimeoutError, ResponseTooLargeError, RevokedImageError, SettingsNotKnownError,
    TransportError, UCloudImagesError,
):
    _error.__module__ = __name__
del _error

if TYPE_CHECKING:
    from ._functions import GetImagesResult, get_images, get_images_output
    from ._pinned import PinnedImage

# Pulumi-facing names, imported on first use so that `import pulumi_ucloud_images` stays light.
_LAZY: dict[str, str] = {
    "GetImagesResult": "._functions",
    "get_images": "._functions",
    "get_images_output": "._functions",
    "PinnedImage": "._pinned",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


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
