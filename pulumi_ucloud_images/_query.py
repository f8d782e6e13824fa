"""The image query: one pydantic model, the single source of truth for every front end.

The CLI flags, the Python function signatures and ``schema.json`` are all derived from :class:`ImageQuery`.
Enum-like values accept any case and are normalised to the API's spelling, so ``base`` and ``BASE`` both
become ``Base``; invalid input fails here, before any network call, as one sentence naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from ._errors import InvalidQueryError
from ._image import ARM64_FEATURE, Image

__all__ = [
    "ARCHITECTURES",
    "FEATURES",
    "FUNC_TYPES",
    "IMAGE_TYPES",
    "OS_TYPES",
    "STATES",
    "ImageQuery",
    "parse_query",
]

IMAGE_TYPES = ("Base", "Business", "Custom")
OS_TYPES = ("Linux", "Windows")
FUNC_TYPES = ("gpu", "app", "uhost")
STATES = ("Available", "Making", "Unavailable", "Copying")
ARCHITECTURES = ("x86_64", "aarch64")
FEATURES = (
    "NetEnhanced",
    "NetEnhanced_Ultra",
    "NetEnhanced_Extreme",
    "HotPlug",
    "GPU",
    "CloudInit",
    "IPv6",
    "RssdAttachable",
    "Vgpu_AMD",
    "Vgpu_NVIDIA",
    ARM64_FEATURE,
)
# The API documentation spells NetEnhanced without its second "a"; real answers do not.
_ALIASES = {"netenhnced": "NetEnhanced", "arm64": "aarch64", "amd64": "x86_64", "x86-64": "x86_64"}


def _allowed(values: Iterable[str]) -> str:
    return ", ".join(values)


def _one_of(allowed: tuple[str, ...]) -> BeforeValidator:
    lookup = {value.lower(): value for value in allowed}

    def normalise(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the str type check reports it
        key = value.strip().lower()
        canonical = lookup.get(key) or lookup.get(_ALIASES.get(key, "").lower())
        if canonical is None:
            raise ValueError(f"must be one of {_allowed(allowed)}")
        return canonical

    return BeforeValidator(normalise)


def _list_of(allowed: tuple[str, ...]) -> BeforeValidator:
    one = _one_of(allowed).func

    def normalise(value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return value
        out: list[Any] = []
        for item in value:
            try:
                canonical = one(item)  # type: ignore[call-arg]
            except ValueError:
                raise ValueError(f"{item!r} is not allowed; each must be one of {_allowed(allowed)}") from None
            if canonical not in out:
                out.append(canonical)
        return out

    return BeforeValidator(normalise)


def _cli(option: str, **extra: Any) -> dict[str, Any]:
    return {"cli": option, **extra}


class ImageQuery(BaseModel):
    """Which image to find. ``region`` may be left out and taken from the settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str | None = Field(
        None,
        description="Region to search, e.g. cn-bj2. Defaults to the configured region.",
        json_schema_extra=_cli("--region"),
    )
    zone: str | None = Field(
        None, description="Only images of this zone, e.g. cn-bj2-02 (server-side).", json_schema_extra=_cli("--zone")
    )
    project_id: str | None = Field(
        None,
        description="Project to search. Defaults to the configured project.",
        json_schema_extra=_cli("--project-id"),
    )
    image_type: Annotated[str | None, _one_of(IMAGE_TYPES)] = Field(
        None,
        description="Base, Business or Custom, any case (server-side).",
        json_schema_extra=_cli("--image-type", enum=list(IMAGE_TYPES)),
    )
    os_type: Annotated[str | None, _one_of(OS_TYPES)] = Field(
        None,
        description="Linux or Windows, any case (server-side).",
        json_schema_extra=_cli("--os-type", enum=list(OS_TYPES)),
    )
    func_type: Annotated[str | None, _one_of(FUNC_TYPES)] = Field(
        None,
        description="gpu, app or uhost, any case (server-side).",
        json_schema_extra=_cli("--func-type", enum=list(FUNC_TYPES)),
    )
    image_id: str | None = Field(
        None, description="Exactly this image ID (server-side).", json_schema_extra=_cli("--image-id")
    )
    ids: tuple[str, ...] = Field(
        (),
        description="Only images among these IDs (server-side).",
        json_schema_extra=_cli("--id", repeatable=True),
    )
    name_regex: str | None = Field(
        None,
        description="Python regular expression searched (unanchored) in the image name.",
        json_schema_extra=_cli("--name-regex"),
    )
    os_name_regex: str | None = Field(
        None,
        description="Python regular expression searched (unanchored) in the OS name.",
        json_schema_extra=_cli("--os-name-regex"),
    )
    features: Annotated[tuple[str, ...], _list_of(FEATURES)] = Field(
        (),
        description="Features the image must all have, e.g. CloudInit, IPv6 (NetEnhnced is read as NetEnhanced).",
        json_schema_extra=_cli("--feature", repeatable=True, enum=list(FEATURES)),
    )
    architecture: Annotated[str | None, _one_of(ARCHITECTURES)] = Field(
        None,
        description="x86_64 or aarch64 (aarch64 images carry the Aarch64_Type feature).",
        json_schema_extra=_cli("--architecture", enum=list(ARCHITECTURES)),
    )
    states: Annotated[tuple[str, ...], _list_of(STATES)] = Field(
        ("Available",),
        min_length=1,
        description="Image states to accept: Available, Making, Unavailable, Copying. Default: Available only.",
        json_schema_extra=_cli("--state", repeatable=True, enum=list(STATES)),
    )
    most_recent: bool = Field(
        False,
        description="When several images match, take the newest instead of failing.",
        json_schema_extra=_cli("--most-recent", flag=True),
    )

    @field_validator("name_regex", "os_name_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
        return value

    @field_validator("region", "zone", "project_id", "image_id")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @field_validator("name_regex", "os_name_regex", mode="after")
    @classmethod
    def _empty_regex_is_unset(cls, value: str | None) -> str | None:
        return value or None  # not stripped: real names carry leading spaces that a regex may match

    @field_validator("ids")
    @classmethod
    def _no_empty_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item.strip() for item in value):
            raise ValueError("must not contain empty IDs")
        return tuple(dict.fromkeys(item.strip() for item in value))

    # -- the two halves of a lookup -------------------------------------------------------------------

    def server_params(self, region: str, project_id: str | None = None) -> dict[str, Any]:
        """DescribeImage parameters for the filters the server applies (paging is the client's)."""
        return {
            "Action": "DescribeImage",
            "Region": region,
            "Zone": self.zone,
            "ProjectId": self.project_id or project_id,
            "ImageType": self.image_type,
            "OsType": self.os_type,
            "FuncType": self.func_type,
            "ImageId": self.image_id,
            "ImageIds": list(self.ids) or None,
        }

    def matches(self, image: Image) -> bool:
        """The client-side half of the filter; also re-checks server-side fields, which costs nothing."""
        return (
            image.state in self.states
            and (self.zone is None or image.zone == self.zone)
            and (self.image_type is None or image.image_type.lower() == self.image_type.lower())
            and (self.os_type is None or image.os_type.lower() == self.os_type.lower())
            and (self.func_type is None or image.func_type.lower() == self.func_type)
            and (self.image_id is None or image.image_id == self.image_id)
            and (not self.ids or image.image_id in self.ids)
            and (self.name_regex is None or re.search(self.name_regex, image.image_name) is not None)
            and (self.os_name_regex is None or re.search(self.os_name_regex, image.os_name) is not None)
            and all(feature in image.features for feature in self.features)
            and (self.architecture is None or image.architecture == self.architecture)
        )

    def criteria(self) -> str:
        """Every criterion in use, for error messages: ``os_type=Linux, name_regex='^Ubuntu'``."""
        parts = []
        for name, value in self.model_dump(exclude={"region"}).items():
            if value in (None, (), [], False):
                continue
            if isinstance(value, (list, tuple)):
                value = ", ".join(value)
                parts.append(f"{name}=[{value}]")
            else:
                parts.append(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}")
        return ", ".join(parts) or "no filters"

    def to_args(self) -> dict[str, Any]:
        """The non-default fields as keyword arguments (lists as lists), for echoing back."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self.model_dump(exclude_defaults=True).items()
        }


def parse_query(values: Mapping[str, Any] | None = None, /, **kwargs: Any) -> ImageQuery:
    """Validate raw input into an :class:`ImageQuery`, turning the first problem into one sentence."""
    data = {**(values or {}), **kwargs}
    try:
        return ImageQuery.model_validate(data)
    except ValidationError as exc:
        raise invalid_query_error(exc) from None


def invalid_query_error(exc: ValidationError, *, naming: Mapping[str, str] | None = None) -> InvalidQueryError:
    """One sentence for the first error: the field (as the caller spells it), the bad value, what is allowed.

    ``naming`` maps model field names to the caller's spelling (``--name-regex``, ``nameRegex``).
    """
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    shown = (naming or {}).get(field, field)
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        allowed = _allowed((naming or {}).get(name, name) for name in ImageQuery.model_fields)
        return InvalidQueryError(f"Unknown filter {shown!r}; the filters are {allowed}.", field=field)
    context = error.get("ctx") or {}
    reason = str(context["error"]) if "error" in context else error["msg"].lower()
    if error["type"] == "too_short" and field == "states":
        reason = f"must name at least one state of {_allowed(STATES)}"
    if field in ("name_regex", "os_name_regex"):
        return InvalidQueryError(f"Invalid {shown}: {reason}.", field=field)
    if isinstance(value, (list, tuple)) and "is not allowed" in reason:
        return InvalidQueryError(f"Invalid {shown}: {reason}.", field=field)
    return InvalidQueryError(f"Invalid {shown} {value!r}: {reason}.", field=field)
