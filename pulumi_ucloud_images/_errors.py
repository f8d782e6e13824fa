"""One exception hierarchy, rooted in :class:`UCloudImagesError`.

Every error carries the exit code the ``ucloud-images`` command uses for it, so the CLI maps errors to
exit codes without a table of its own.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AmbiguousImageError",
    "CredentialsError",
    "InvalidQueryError",
    "LockfileError",
    "NoImageFoundError",
    "ResponseFormatError",
    "TransportError",
    "UCloudImagesError",
]


class UCloudImagesError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code: int = 5


class InvalidQueryError(UCloudImagesError, ValueError):
    """Bad input, found before any network call. ``field`` names the offending input."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CredentialsError(UCloudImagesError):
    """A setting (keys, profile files) is missing or unusable."""

    exit_code = 5

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class LockfileError(UCloudImagesError):
    """A lockfile or selection file is malformed, or disagrees with the query in code."""

    exit_code = 2


class TransportError(UCloudImagesError):
    """The API could not be reached or did not answer in time, after every retry."""

    exit_code = 5

    def __init__(self, message: str, *, action: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.action = action
        self.request_id = request_id


class ResponseFormatError(TransportError):
    """The API answered something that is not a DescribeImage envelope (not JSON, no RetCode, bad shape)."""


class APIError(UCloudImagesError):
    """The API answered with RetCode != 0."""

    exit_code = 5

    def __init__(self, ret_code: int, message: str, *, action: str, request_id: str) -> None:
        self.ret_code = ret_code
        self.api_message = message
        self.action = action
        self.request_id = request_id
        super().__init__(
            f"UCloud API {action} failed with RetCode {ret_code}: {message or '(no message)'} "
            f"(request id {request_id or 'unknown'})."
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_api_error, (self.ret_code, self.api_message, self.action, self.request_id))


def _rebuild_api_error(ret_code: int, message: str, action: str, request_id: str) -> APIError:
    return APIError(ret_code, message, action=action, request_id=request_id)


class NoImageFoundError(UCloudImagesError, LookupError):
    """No image matched every criterion."""

    exit_code = 3


class AmbiguousImageError(UCloudImagesError, LookupError):
    """Several images matched and ``most_recent`` was not set."""

    exit_code = 4

    def __init__(self, message: str, *, image_ids: list[str]) -> None:
        super().__init__(message)
        self.image_ids = image_ids
