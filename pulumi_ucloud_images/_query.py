"""The image query: one pydantic model, the single source of truth for every front end.

The CLI flags, the Python function signatures and ``schema.json`` are all derived from :class:`ImageQuery`.
Enum-like values accept any case and are normalised to the API's spelling, so ``base`` and ``BASE`` both
become ``Base``; invalid input fails here, before any network call, as one sentence naming the field.
Every filter is declared here once, with its description, flag and rules:
the one place a new filter is added.
"""

from __future__ import annotations

import difflib
import functools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timezone
from typing import Annotated, Any

import regex
from pydantic import (
    AfterValidator,
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from ._api.image import ARM64_FEATURE, Image
from ._errors import InvalidQueryError
from ._naming import camel

__all__ = [
    "ARCHITECTURES",
    "FEATURES",
    "FUNC_TYPES",
    "IMAGE_TYPES",
    "OS_TYPES",
    "SCENE_CATEGORIES",
    "STATES",
    "ImageQuery",
    "field_extra",
    "invalid_query_error",
    "invalid_query_errors",
    "parse_query",
    "regex_problem",
    "utc_today",
]

IMAGE_TYPES = ("Base", "Business", "Custom")
OS_TYPES = ("Linux", "Windows")
FUNC_TYPES = ("gpu", "app", "uhost")
STATES = ("Available", "Making", "Unavailable", "Copying")
ARCHITECTURES = ("x86_64", "aarch64")
SCENE_CATEGORIES = ("Featured", "PreInstalledDrivers", "AIPainting", "AIModels", "HPC")
MARKETPLACE_TYPE = "Business"  # the image type of marketplace images (third parties' and UCloud's own offers)
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
_FEATURE_ALIASES = {"netenhnced": "NetEnhanced"}
_ALIASES = {**_FEATURE_ALIASES, "arm64": "aarch64", "amd64": "x86_64", "x86-64": "x86_64"}


def _allowed(values: Iterable[str]) -> str:
    return ", ".join(values)


_SHOWN_LENGTH = 120  # a value longer than this (a 1,000-character regex) is shown cut, with "..."


def _quote(value: Any) -> str:
    """Strings in single quotes, unescaped, so a regex reads as typed and stray spaces show; else repr."""
    shown = value if isinstance(value, str) else repr(value)
    if len(shown) > _SHOWN_LENGTH:
        shown = shown[: _SHOWN_LENGTH - 3] + "..."
    return f"'{shown}'" if isinstance(value, str) else shown


class _BadValue(ValueError):
    """A bad value, carrying the offending item (one entry of a list, when ``entry``) so the message quotes
    that item rather than the whole input."""

    def __init__(self, reason: str, value: Any, *, entry: bool = False) -> None:
        super().__init__(reason)
        self.value = value
        self.entry = entry


def _canonical(value: Any, allowed: tuple[str, ...], *, entry: bool = False) -> str:
    if isinstance(value, str):
        key = value.strip().lower()
        key = _ALIASES.get(key, key).lower()
        for candidate in allowed:
            if candidate.lower() == key:
                return candidate
    raise _BadValue(f"must be one of {_allowed(allowed)}", value, entry=entry)


def _one_of(allowed: tuple[str, ...]) -> BeforeValidator:
    """Any case in, the API's spelling out; ``None`` stays unset."""
    return BeforeValidator(lambda value: value if value is None else _canonical(value, allowed))


def _list_of(allowed: tuple[str, ...]) -> BeforeValidator:
    """A list (or one bare value) of enumeration members, normalised, deduplicated and sorted: these filters
    are sets, so two queries that differ only in order are equal (lockfile and pin comparisons rely on it)."""

    def normalise(value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return value  # the tuple type check reports it
        return tuple(sorted({_canonical(item, allowed, entry=True) for item in value}))

    return BeforeValidator(normalise)


def _has_features(image: Image, wanted: tuple[str, ...]) -> bool:
    """Every wanted feature is present, reading the image's own spelling as leniently as the query's."""
    if not wanted:
        return True
    present = {_FEATURE_ALIASES.get(feature.lower(), feature).lower() for feature in image.features}
    return all(feature.lower() in present for feature in wanted)


def _cli(option: str, **extra: Any) -> dict[str, Any]:
    return {"cli": option, **extra}


def field_extra(field: FieldInfo) -> dict[str, Any]:
    """The front-end metadata of a query field: ``cli`` (its flag), ``enum``, ``repeatable``, ``flag``,
    ``api`` (the DescribeImage parameter of a filter the server applies) and ``searched`` (the image attribute
    a regex filter is searched in)."""
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


# Regexes are Python's `re` syntax. They are checked by `re` (whose messages name the error position) and
# matched by the `regex` module in its `re`-compatible mode (VERSION0), which can stop a match that runs too
# long: all the matching of one pass over a listing gets MATCH_SECONDS, so no pattern (say `(a+)+$` against a
# name of 34 "a"s and a "!") can stall a lookup.
MAX_REGEX_LENGTH = 1000
MATCH_SECONDS = 2.0
_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")


def _compiles(value: str | None) -> str | None:
    if value:
        problem = regex_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value or None  # not stripped: real names carry leading spaces that a regex may match


def utc_today() -> date:
    """The date of a lookup, in UTC: what ``exclude_eol`` and the EOL warning compare end-of-life dates with."""
    return datetime.now(timezone.utc).date()


def _date_text(value: Any) -> Any:
    """A date (``datetime.date`` or ``YYYY-MM-DD`` text) as ``YYYY-MM-DD``; blank is unset."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return None if value is None else value.isoformat()
    if isinstance(value, str):
        if not value.strip():
            return None
        found = _DATE.fullmatch(value.strip())
        if found is not None:
            try:
                return date(*(int(part) for part in found.groups())).isoformat()
            except ValueError:
                pass
    raise _BadValue("must be a date written YYYY-MM-DD, e.g. 2027-01-01", value)


def _free_list(value: Any) -> Any:
    """A list (or one bare value) of free-form names, stripped, deduplicated and sorted (a set, like the enum
    lists); an empty entry is refused."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return value  # the tuple type check reports it
    if any(not isinstance(item, str) for item in value):
        return value
    if any(not item.strip() for item in value):
        raise _BadValue("must not be empty", "", entry=True)
    return tuple(sorted({item.strip() for item in value}))


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> regex.Pattern[str]:
    """Selection tests every listed image; compiling once per pattern keeps that loop cheap."""
    return regex.compile(pattern, regex.VERSION0)


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used as a filter regex, in words, or ``None`` when it can."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"a regular expression may be at most {MAX_REGEX_LENGTH} characters long"
    try:
        re.compile(pattern)
        _compiled(pattern)
    except (re.error, regex.error) as exc:
        return f"not a valid regular expression: {exc}"
    except OverflowError:
        return "not a valid regular expression: a repetition count is too large"
    except RecursionError:
        return "not a valid regular expression: its groups nest too deeply"
    return None


def _too_slow(field: str, pattern: str, naming: Mapping[str, str]) -> InvalidQueryError:
    return InvalidQueryError(
        f"Invalid {naming.get(field, field)} {_quote(pattern)}: matching it against the listed images took more than "
        f"{MATCH_SECONDS:g} s (it backtracks catastrophically, as nested repetition such as (a+)+ does); "
        "rewrite it.",
        field=field,
    )


Regex = Annotated[str | None, AfterValidator(_compiles)]
"""A regex filter's type: Python ``re`` syntax, checked when the query is validated; blank is unset."""


class ImageQuery(BaseModel):
    """Which image to find. ``region`` may be left out and taken from the settings."""

    # Dumped by alias, a query speaks the schema's camelCase (``nameRegex``); it is validated by field name only.
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=AliasGenerator(serialization_alias=camel))

    region: str | None = Field(
        default=None,
        description="Region to search, e.g. cn-bj2. Defaults to the configured region.",
        json_schema_extra=_cli("--region"),
    )
    zone: str | None = Field(
        default=None,
        description="Only images of this zone, e.g. cn-bj2-02 (server-side).",
        json_schema_extra=_cli("--zone", api="Zone"),
    )
    project_id: str | None = Field(
        default=None,
        description="Project to search. Defaults to the configured project.",
        json_schema_extra=_cli("--project-id", api="ProjectId"),
    )
    image_type: Annotated[str | None, _one_of(IMAGE_TYPES)] = Field(
        default=None,
        description="Base, Business or Custom, any case (server-side).",
        json_schema_extra=_cli("--image-type", enum=list(IMAGE_TYPES), api="ImageType"),
    )
    os_type: Annotated[str | None, _one_of(OS_TYPES)] = Field(
        default=None,
        description="Linux or Windows, any case (server-side).",
        json_schema_extra=_cli("--os-type", enum=list(OS_TYPES), api="OsType"),
    )
    func_type: Annotated[str | None, _one_of(FUNC_TYPES)] = Field(
        default=None,
        description="gpu, app or uhost, any case (server-side).",
        json_schema_extra=_cli("--func-type", enum=list(FUNC_TYPES), api="FuncType"),
    )
    image_id: str | None = Field(
        default=None,
        description="Exactly this image ID (server-side).",
        json_schema_extra=_cli("--image-id", api="ImageId"),
    )
    ids: tuple[str, ...] = Field(
        default=(),
        description="Only images among these IDs (server-side).",
        json_schema_extra=_cli("--id", repeatable=True, api="ImageIds"),
    )
    name_regex: Regex = Field(
        default=None,
        description="Python regular expression searched (unanchored) in the image name.",
        json_schema_extra=_cli("--name-regex", searched="image_name"),
    )
    os_name_regex: Regex = Field(
        default=None,
        description="Python regular expression searched (unanchored) in the OS name.",
        json_schema_extra=_cli("--os-name-regex", searched="os_name"),
    )
    features: Annotated[tuple[str, ...], _list_of(FEATURES)] = Field(
        default=(),
        description="Features the image must all have, e.g. CloudInit, IPv6 (NetEnhnced is read as NetEnhanced).",
        json_schema_extra=_cli("--feature", repeatable=True, enum=list(FEATURES)),
    )
    architecture: Annotated[str | None, _one_of(ARCHITECTURES)] = Field(
        default=None,
        description="x86_64 or aarch64 (aarch64 images carry the Aarch64_Type feature).",
        json_schema_extra=_cli("--architecture", enum=list(ARCHITECTURES)),
    )
    states: Annotated[tuple[str, ...], _list_of(STATES)] = Field(
        default=("Available",),
        min_length=1,
        description="Image states to accept: Available, Making, Unavailable, Copying. Default: Available only.",
        json_schema_extra=_cli("--state", repeatable=True, enum=list(STATES)),
    )
    most_recent: bool = Field(
        default=False,
        description="When several images match, take the newest instead of failing (never across architectures).",
        json_schema_extra=_cli("--most-recent", flag=True),
    )
    include_marketplace: bool = Field(
        default=False,
        description="Let marketplace (Business) images match. Without it they match only when image_type is "
        "Business or a func_type is given.",
        json_schema_extra=_cli("--include-marketplace", flag=True),
    )
    exclude_eol: bool = Field(
        default=False,
        description="Leave out images whose end of maintenance (MaintainEol) is before today (UTC); images "
        "with no known EOL stay.",
        json_schema_extra=_cli("--exclude-eol", flag=True),
    )
    supported_until: Annotated[str | None, BeforeValidator(_date_text)] = Field(
        default=None,
        description="A date, YYYY-MM-DD: only images maintained until at least then (MaintainEol on or after "
        "it); images with no known EOL are left out.",
        json_schema_extra=_cli("--supported-until", accepts="str | date"),
    )
    gpu_types: Annotated[tuple[str, ...], BeforeValidator(_free_list)] = Field(
        default=(),
        description="GPU types the image must all support (SupportedGPUTypes, any case), e.g. A100, 4090.",
        json_schema_extra=_cli("--gpu-type", repeatable=True),
    )
    scene_categories: Annotated[tuple[str, ...], _list_of(SCENE_CATEGORIES)] = Field(
        default=(),
        description="Scene categories, any of which the image must have (SceneCategories): Featured, "
        "PreInstalledDrivers, AIPainting, AIModels, HPC.",
        json_schema_extra=_cli("--scene-category", repeatable=True, enum=list(SCENE_CATEGORIES)),
    )
    vendor_regex: Regex = Field(
        default=None,
        description="Python regular expression searched (unanchored) in the image's Vendor.",
        json_schema_extra=_cli("--vendor-regex", searched="vendor"),
    )
    software_regex: Regex = Field(
        default=None,
        description="Python regular expression searched (unanchored) in the image's IntegratedSoftware, the "
        "software a marketplace image comes with, e.g. WordPress 6\\.5.",
        json_schema_extra=_cli("--software-regex", searched="integrated_software"),
    )
    prices: bool = Field(
        default=False,
        description="Ask DescribeImage for prices (PriceSet=1) and include them in the result.",
        json_schema_extra=_cli("--prices", flag=True, api="PriceSet"),
    )

    @model_validator(mode="before")
    @classmethod
    def _none_is_unset(cls, data: Any) -> Any:
        """``None`` means "not given" for every field, as in Pulumi-style keyword arguments."""
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @field_validator("include_marketplace")
    @classmethod
    def _marketplace_can_match(cls, value: bool, info: ValidationInfo) -> bool:
        """Asking for marketplace images and an image type that has none would be silently ignored: refused."""
        image_type = info.data.get("image_type")
        if value and image_type not in (None, MARKETPLACE_TYPE):
            raise _BadValue(f"adds marketplace ({MARKETPLACE_TYPE}) images, and image type {image_type} has none; "
                            "leave out one of the two", value)
        return value

    @field_validator("region", "zone", "project_id", "image_id")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @field_validator("ids", mode="before")
    @classmethod
    def _one_id_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("ids")
    @classmethod
    def _no_empty_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item.strip() for item in value):
            raise _BadValue("must not be empty", "", entry=True)
        return tuple(sorted({item.strip() for item in value}))  # a set, like the enum lists

    # -- the two halves of a lookup -------------------------------------------------------------------

    def server_params(self, region: str, project_id: str | None = None) -> dict[str, Any]:
        """DescribeImage parameters for the filters the server applies (paging is the client's): each field
        whose metadata names its ``api`` parameter, a list as a list, a flag as 1, unset ones as None. The
        region and project are the lookup's scope (:func:`~pulumi_ucloud_images._settings.scope.lookup_scope` decides
        them), not read here."""
        params: dict[str, Any] = {"Action": "DescribeImage", "Region": region}
        for name, parameter in _SERVER_PARAMETERS.items():
            value = project_id if name == "project_id" else getattr(self, name)
            if isinstance(value, tuple):
                value = list(value) or None
            elif isinstance(value, bool):
                value = 1 if value else None
            params[parameter] = value
        return params

    # -- what the query lets in, beyond the filters --------------------------------------------------

    @property
    def names_marketplace(self) -> bool:
        """Whether marketplace (Business) images may match: the query names them (``image_type`` Business or
        any ``func_type``, all three being marketplace categories) or sets ``include_marketplace``."""
        return self.include_marketplace or self.image_type == MARKETPLACE_TYPE or self.func_type is not None

    @property
    def filters_eol(self) -> bool:
        """Whether an EOL filter (``exclude_eol``, ``supported_until``) is in use."""
        return self.exclude_eol or self.supported_until is not None

    @property
    def supported_until_date(self) -> date | None:
        return None if self.supported_until is None else date.fromisoformat(self.supported_until)

    def matches(self, image: Image) -> bool:
        """The client-side half of the filter; also re-checks server-side fields, which costs nothing."""
        return self.matcher()(image)

    def matcher(
        self, naming: Mapping[str, str] | None = None, *, any_state: bool = False, today: date | None = None
    ) -> Callable[[Image], bool]:
        """:meth:`matches` for one pass over a listing: all its regex matching shares ``MATCH_SECONDS``, after
        which the pattern that ran over is an :class:`InvalidQueryError` (``naming`` spells its field).
        ``any_state`` leaves ``states`` out (to tell what a wider ``states`` would let in). ``today`` is the
        lookup's date for ``exclude_eol`` (default: :func:`utc_today`)."""
        patterns: list[tuple[str, str, regex.Pattern[str]]] = []
        for name in _REGEX_FIELDS:
            pattern = getattr(self, name)
            if pattern is not None:
                problem = regex_problem(pattern)  # a query built without validation (model_construct)
                if problem is not None:
                    raise InvalidQueryError(f"Invalid {(naming or {}).get(name, name)} {_quote(pattern)}: {problem}.",
                                            field=name)
                patterns.append((name, pattern, _compiled(pattern)))
        ends = time.monotonic() + MATCH_SECONDS
        marketplace = self.names_marketplace
        gpu_types = {gpu.lower() for gpu in self.gpu_types}
        scenes = {scene.lower() for scene in self.scene_categories}
        until = self.supported_until_date
        day = (today or utc_today()) if self.exclude_eol else None

        def supported(image: Image) -> bool:
            if until is not None and (image.eol_date is None or image.eol_date < until):
                return False
            return day is None or not image.past_eol(day)

        known: dict[tuple[str, str], bool] = {}  # (field, text) -> found: many images share a name

        def searched(image: Image) -> bool:
            for name, pattern, compiled in patterns:
                text = getattr(image, SEARCHED[name])
                found = known.get((name, text))
                if found is None:
                    left = ends - time.monotonic()
                    try:
                        if left <= 0:
                            raise TimeoutError
                        found = known[name, text] = compiled.search(text, timeout=left) is not None
                    except TimeoutError:
                        raise _too_slow(name, pattern, naming or {}) from None
                if not found:
                    return False
            return True

        # The query's fields read once, as locals: this runs for every listed image (30,000 in a large region).
        states = frozenset(self.states)
        zone, image_id, ids = self.zone, self.image_id, frozenset(self.ids)
        features, architecture = self.features, self.architecture
        image_type = None if self.image_type is None else self.image_type.lower()
        os_type = None if self.os_type is None else self.os_type.lower()
        func_type = self.func_type
        dated = until is not None or day is not None

        def match(image: Image) -> bool:
            return (
                (any_state or image.state in states)
                and (zone is None or image.zone == zone)
                and (image_type is None or image.image_type.lower() == image_type)
                and (os_type is None or image.os_type.lower() == os_type)
                and (func_type is None or image.func_type.lower() == func_type)
                and (image_id is None or image.image_id == image_id)
                and (not ids or image.image_id in ids)
                and _has_features(image, features)
                and (architecture is None or image.architecture == architecture)
                and (marketplace or image.image_type.lower() != "business")
                and (not gpu_types or gpu_types <= {gpu.lower() for gpu in image.supported_gpu_types})
                and (not scenes or any(scene.lower() in scenes for scene in image.scene_categories))
                and (not dated or supported(image))
                and (not patterns or searched(image))
            )

        return match

    def criteria(self, naming: Mapping[str, str] | None = None) -> str:
        """Every criterion in use, for error messages: ``os_type='Linux', name_regex='^Ubuntu 22\\.04'``.

        Strings are quoted (so stray spaces show) but not escaped: a regex reads as the user wrote it.
        ``naming`` spells the fields as the caller does (``--os-type``, ``osType``).
        """
        naming = naming or {}
        parts = []
        for name, value in self.model_dump(exclude={"region"}).items():
            if value in (None, (), [], False):
                continue
            shown = naming.get(name, name)
            if isinstance(value, (list, tuple)):
                value = ", ".join(value)
                parts.append(f"{shown}=[{value}]")
            else:
                parts.append(f"{shown}={_quote(value)}")
        return ", ".join(parts) or "no filters"

    def to_args(self) -> dict[str, Any]:
        """The non-default fields as keyword arguments (lists as lists), for echoing back."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self.model_dump(exclude_defaults=True).items()
        }


_SERVER_PARAMETERS = {
    name: str(extra["api"]) for name, field in ImageQuery.model_fields.items() if "api" in (extra := field_extra(field))
}
"""Query field -> the DescribeImage parameter that filters on it, in field order."""


SEARCHED: dict[str, str] = {
    name: field_extra(field)["searched"] for name, field in ImageQuery.model_fields.items()
    if "searched" in field_extra(field)
}
"""Regex filter -> the image attribute it is searched in, from the fields' own metadata."""
_REGEX_FIELDS = tuple(SEARCHED)


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
    return invalid_query_errors(exc, naming=naming)[0]


def invalid_query_errors(
    exc: ValidationError, *, naming: Mapping[str, str] | None = None
) -> list[InvalidQueryError]:
    """One sentence per error, for callers that report every bad field at once (Pulumi check failures)."""
    return [_sentence(error, naming or {}) for error in exc.errors()]


def _sentence(error: ErrorDetails, naming: Mapping[str, str]) -> InvalidQueryError:
    loc = error["loc"]
    field = str(loc[0]) if loc else ""
    shown = naming.get(field, field)
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        shown = field  # an unknown key is named as it was given, even when it is a field's other spelling
        names = [naming.get(name, name) for name in ImageQuery.model_fields]
        close = difflib.get_close_matches(shown, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return InvalidQueryError(f"Unknown filter {shown!r}{hint}; the filters are {_allowed(names)}.", field=field)
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _BadValue):
        value = cause.value
    if len(loc) > 1 or (isinstance(cause, _BadValue) and cause.entry):
        shown = f"{shown} entry"
    reason = str(cause) if cause is not None else _REASONS.get(error["type"], error["msg"].lower())
    if error["type"] == "too_short" and field == "states":
        return InvalidQueryError(f"Invalid {shown}: must name at least one of {_allowed(STATES)}.", field=field)
    return InvalidQueryError(f"Invalid {shown} {_quote(value)}: {reason}.", field=field)


_REASONS = {
    "string_type": "must be a string",
    "tuple_type": "must be a list of strings",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
}
