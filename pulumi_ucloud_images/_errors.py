"""One exception hierarchy, rooted in :class:`UCloudImagesError`.

Exit codes are the command's business: ``_cli`` maps these types to them; a library error carries none.
"""

from __future__ import annotations

from ._display import shown

__all__ = [
    "APIError",
    "AmbiguousImageError",
    "CredentialsError",
    "InconsistentListingError",
    "InvalidQueryError",
    "LockfileError",
    "NoImageFoundError",
    "PolicyConfigError",
    "ProfileError",
    "ProviderError",
    "ResponseFormatError",
    "SettingsNotKnownError",
    "TransportError",
    "UCloudImagesError",
]


class UCloudImagesError(Exception):
    """Base of every error this package raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take keyword-only details; rebuild from the message and attributes, not from __init__.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[UCloudImagesError], message: str, state: dict[str, object]) -> UCloudImagesError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidQueryError(UCloudImagesError, ValueError):
    """Bad input, found before any network call. ``field`` names the offending input."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CredentialsError(UCloudImagesError):
    """A setting (keys, profile files) is missing or unusable."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class ProfileError(CredentialsError):
    """The UCloud CLI's profile files are malformed, or a profile or file that was named is not there.

    Bad input (exit 2), like any other malformed file; still a :class:`CredentialsError`.
    """



class LockfileError(UCloudImagesError):
    """A lockfile or selection file is malformed, or disagrees with the query in code."""



class RevokedImageError(LockfileError):
    """A lockfile pin holds an image revoked (``ucloud-images revoke``) from a date that has come."""


class TransportError(UCloudImagesError):
    """The API could not be reached or did not answer in time, after every retry."""

    def __init__(self, message: str, *, action: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.action = action
        self.request_id = request_id


class ResponseFormatError(TransportError):
    """The API answered something that is not a DescribeImage envelope (not JSON, no RetCode, bad shape)."""


class ConnectionFailedError(TransportError):
    """No connection could be made (refused, host name not resolved, TLS handshake failed or not TLS at all)."""


class ResponseTimeoutError(TransportError):
    """The answer did not arrive within its request's deadline (a stalled or trickling server)."""


class RedirectError(TransportError):
    """The API answered with an HTTP redirect, which is never followed. ``location_host`` is where it pointed."""

    def __init__(self, message: str, *, action: str = "", request_id: str = "", location_host: str = "") -> None:
        super().__init__(message, action=action, request_id=request_id)
        self.location_host = location_host


class ResponseTooLargeError(TransportError):
    """An answer was larger than the client accepts (bytes after decompression, or images in a listing)."""


class InconsistentListingError(TransportError):
    """The listing changed while it was read (TotalCount moved, pages short, empty or overlapping) in every read."""


# What a user should check for the RetCodes a lookup can meet (ucloud-api-facts.md, section 3).
_HINTS = {
    110: "try again",
    130: "try again later",
    150: "try again later",
    153: "try again later, or send fewer requests",
    160: "check that the base URL is the UCloud API",
    161: "check that the base URL is the UCloud API",
    170: "check that the base URL is the UCloud API",
    171: "check that the private key belongs to the public key",
    172: "check the public and private keys",
    230: "check the region and the filters",
    292: "check the project ID",
    293: "check the zone and the account's permission to use it",
    299: "check the key's permissions and the project ID",
}


_MESSAGE_LIMIT = 300
_REQUEST_ID_LIMIT = 100


class APIError(UCloudImagesError):
    """The API answered with RetCode != 0."""

    def __init__(
        self, ret_code: int, message: str, *, action: str, request_id: str, detail: str = "", note: str = ""
    ) -> None:
        # The message and the request id are the server's text: shown without control characters, cut short.
        message = shown(message.strip(), _MESSAGE_LIMIT)
        request_id = shown(request_id, _REQUEST_ID_LIMIT)
        self.ret_code = ret_code
        self.api_message = message
        self.action = action
        self.request_id = request_id
        self.detail = detail  # what the client adds (where the keys came from); ``note``: how retries ended
        hint = _HINTS.get(ret_code)
        super().__init__(
            f"UCloud API {action} failed with RetCode {ret_code}: {message.rstrip('.') or '(no message)'} "
            f"(request id {request_id or 'unknown'}){f'; {hint}' if hint else ''}{f' ({detail})' if detail else ''}."
            f"{f' {note}' if note else ''}"
        )

class PolicyConfigError(UCloudImagesError, ValueError):
    """The policy settings (a policy pack's config, the audit command's flags, a state file) are malformed."""


class SettingsNotKnownError(UCloudImagesError):
    """A lookup was asked for while a setting is still unknown (a preview); lookups need known settings."""


class ProviderError(UCloudImagesError):
    """A request the provider plugin cannot serve (an unknown function or resource type)."""


class NoImageFoundError(UCloudImagesError, LookupError):
    """No image matched every criterion."""



class AmbiguousImageError(UCloudImagesError, LookupError):
    """Several images matched and ``most_recent`` was not set."""

    def __init__(self, message: str, *, image_ids: list[str]) -> None:
        super().__init__(message)
        self.image_ids = image_ids
