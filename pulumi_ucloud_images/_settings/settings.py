"""Settings: where the region, keys, project and endpoint come from, resolved once and validated once.

The places are the sources of :mod:`~pulumi_ucloud_images._settings.sources`, asked in this order, first found wins per
setting:
explicit arguments, the config source a face hands in (a Pulumi program's stack config ``ucloud:*``, the
provider plugin's settings, a lockfile's ``[settings]``), the ``UCLOUD_*`` environment, and the UCloud CLI's
profile files. The core never imports pulumi: the Pulumi faces pass their stack config in.

The private key is held as a :class:`pydantic.SecretStr` from the moment it is read and a :class:`Settings`
refuses to be pickled, so it cannot leak into a repr, a log line, an error, a traceback's locals or a dynamic
provider's pickle. Messages name the places a setting was looked for in the words of the front end that asked
(a :class:`Face`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .._errors import CredentialsError, InvalidQueryError
from .profiles import ProfileFilesSource
from .sources import (
    CLI_FACE,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    LOOKUP_ARGUMENTS,
    PYTHON_FACE,
    SETTINGS,
    ArgumentsSource,
    ConfigSource,
    EnvironmentSource,
    Face,
    Source,
    conceal_key,
    conceal_key_argument,
    given,
    looked_at,
)

__all__ = [
    "CLI_FACE",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "LOOKUP_ARGUMENTS",
    "PYTHON_FACE",
    "SETTINGS",
    "ConfigSource",
    "Face",
    "Settings",
    "conceal_key",
    "conceal_key_argument",
    "endpoint_problem",
    "has_userinfo",
    "missing_region",
    "resolve_region",
    "resolve_settings",
    "timeout_problem",
    "userinfo_message",
]

Config = ConfigSource | Callable[[str], Any]
"""A face's config: a :class:`ConfigSource`, or a reader of ``ucloud:*`` keys (named as the face's config)."""

_CREDENTIAL_KEYS = tuple(name for name, setting in SETTINGS.items() if setting.credential)


class Settings(BaseModel):
    """Resolved settings for one client. ``private_key`` is a secret and never shown."""

    # A validation error never quotes what it was given: the private key or a URL with a password in it.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    public_key: str = Field(repr=False)
    private_key: SecretStr = Field(repr=False)
    region: str | None = None
    project_id: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT
    profile: str | None = None
    key_sources: tuple[str, str] = Field(default=("", ""), repr=False)
    """Where the public and the private key came from (never the keys), for errors about them."""
    region_looked_at: str = Field(default="", repr=False)
    """Every place the region was looked for, for the missing-region error of a lookup that names none."""

    def __init__(self, **data: Any) -> None:
        conceal_key_argument(data)  # a plain key given here is a secret before anything can fail
        try:
            super().__init__(**data)
        except ValidationError as exc:
            if _rule(exc)[1] != _USERINFO_RULE:
                raise
        else:
            return
        raise InvalidQueryError(userinfo_message("Settings.base_url"), field="base_url")  # the URL not shown

    @field_validator("timeout", mode="before")
    @classmethod
    def _positive_seconds(cls, value: Any) -> float:
        problem = timeout_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return DEFAULT_TIMEOUT if value is None else float(value)

    @field_validator("base_url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        problem = endpoint_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Settings:
        """A copy; with ``update``, validated by the same rules (pydantic's own copy would skip them)."""
        if not update:
            return super().model_copy(deep=deep)
        return type(self)(**{**dict(self), **update})

    def __reduce__(self) -> NoReturn:
        raise TypeError("Settings hold a private key and are never pickled; resolve them where they are used.")

    def __getstate__(self) -> NoReturn:
        self.__reduce__()

    @property
    def cache_key(self) -> tuple[str, str, str]:
        """Identifies the account and endpoint without the secret."""
        return (self.base_url.rstrip("/"), self.public_key, self.project_id or "")


def has_userinfo(url: str) -> bool:
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return "@" in url


_USERINFO_RULE = "carries a user name or password"


def timeout_problem(value: Any) -> str | None:
    """What is wrong with a timeout (seconds, a number or its text), or None: every face checks it with this."""
    if value is None:
        return None
    try:
        seconds = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    return None if 0 < seconds < math.inf else "must be a positive, finite number of seconds"


def endpoint_problem(url: str) -> str | None:
    """What is wrong with an API endpoint (the rule, in words), or None: every face checks it with this."""
    if has_userinfo(url):
        return _USERINFO_RULE
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        return "must be an http:// or https:// URL"
    try:
        port_usable = parts.port != 0  # urlsplit raises ValueError for a port not a number from 0 to 65535
    except ValueError:
        port_usable = False
    return None if port_usable else "must have a port from 1 to 65535, or none"


def _rule(exc: ValidationError) -> tuple[str, str]:
    """The field and the rule (our validators' own words) of the first problem pydantic found."""
    error = exc.errors(include_input=False)[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    cause = (error.get("ctx") or {}).get("error")
    return field, str(cause) if cause is not None else error["msg"]


def userinfo_message(where: str) -> str:
    return (
        f"Invalid {where}: it carries a user name or password (user:password@...), which the UCloud API does not "
        "use and which would be shown wherever the URL is; remove it (the URL is not shown here)."
    )


def missing_region(looked_at: str = "") -> InvalidQueryError:
    """The one missing-region error: where the region was looked for, when that is known."""
    if not looked_at:
        return InvalidQueryError("No UCloud region was given: pass region, or settings that have one.", field="region")
    return InvalidQueryError(f"No UCloud region was given; looked at {looked_at}.", field="region")


# -- asking the sources ---------------------------------------------------------------------------------


class _Found(NamedTuple):
    """Every setting as the sources gave it (not yet validated), and how to say where it was looked for."""

    values: dict[str, Any]
    sources: dict[str, str]
    profile: str | None
    looked: Callable[[str], str]


def _gather(
    explicit: Mapping[str, Any], config: Config | None, env: Mapping[str, str] | None, home: Path | None, face: Face
) -> _Found:
    environment = EnvironmentSource(env)
    files = ProfileFilesSource(environment, home=home, face=face)  # read first: a bad file is said first
    early: list[Source] = [ArgumentsSource(explicit)]
    if config is not None:
        early.append(config if isinstance(config, ConfigSource) else ConfigSource(config))
    early.append(environment)

    def first(name: str) -> tuple[Any, str]:
        """The value from the sources before the files, and where it came from. Blank counts as unset."""
        # Every source is read, even after one has answered: a config source may refuse a value it does not
        # know yet (a preview), and a lookup must not go on as if that setting did not matter.
        answers = [(given(source.read(name)), label) for source in early
                   if (label := source.label(name, face)) is not None]
        return next(((value, label) for value, label in answers if value is not None), (None, ""))

    files.select(*first("profile"))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in SETTINGS:
        if name != "profile":
            value, where = first(name)
            values[name], sources[name] = (value, where) if value is not None else files.found(name)
    return _Found(values, sources, files.profile, lambda name: looked_at([*early, files], name, face))


def resolve_region(
    *,
    region: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    config: Config | None = None,
    home: Path | None = None,
    face: Face = PYTHON_FACE,
) -> str | None:
    """The region the settings name, by the same sources and order, without needing keys (e.g. a preview
    that only fills in a default), or ``None``."""
    found = _gather({"region": region, "profile": profile}, config, env, home, face)
    return None if found.values["region"] is None else str(found.values["region"])


def resolve_settings(
    *,
    public_key: str | None = None,
    private_key: str | SecretStr | None = None,
    region: str | None = None,
    project_id: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    config: Config | None = None,
    home: Path | None = None,
    require_region: bool = True,
    face: Face = PYTHON_FACE,
) -> Settings:
    """Resolve every setting from the sources, in order; fail with one sentence naming where it looked.

    ``config`` is the face's config source (none by default: the Pulumi faces pass the stack config, the
    plugin its own settings); ``env`` and ``home`` default to the process environment and the user's home
    directory. ``face`` names the sources as the calling front end does.
    A missing region is bad input (:class:`InvalidQueryError` on ``region``, exit 2) and missing keys a
    credentials error (:class:`CredentialsError`, exit 5). When both are missing, one sentence says both, region
    first, and it is the region's error: the input is what is wrong first, and every face and exit code agrees.
    """
    private_key = conceal_key(private_key)
    explicit: dict[str, Any] = {
        "public_key": public_key,
        "private_key": private_key,
        "region": region,
        "project_id": project_id,
        "base_url": base_url,
        "timeout": timeout,
        "profile": profile,
    }
    values, sources, profile_name, looked = _gather(explicit, config, env, home, face)

    missing_keys = [name for name in _CREDENTIAL_KEYS if values[name] is None]
    no_region = require_region and values["region"] is None
    if no_region and not missing_keys:
        raise missing_region(looked("region"))
    if missing_keys:
        first = missing_keys[0]
        label = first.replace("_", " ")
        if no_region:  # the region first, then the keys, in one sentence: bad input, like a region alone
            keys = "public or private key" if len(missing_keys) == 2 else label
            likewise = " (and likewise for the private key)" if len(missing_keys) == 2 else ""
            raise InvalidQueryError(
                f"No UCloud region was given and no {keys} was found; looked for the region at {looked('region')}, "
                f"and for the {label} at {looked(first)}{likewise}.",
                field="region",
            )
        raise CredentialsError(f"No UCloud {label} was found; looked at {looked(first)}.", setting=first)

    def invalid(name: str, rule: str) -> InvalidQueryError:
        source = sources[name]
        if face.hides(source):
            return InvalidQueryError(f"Invalid {source}: {rule} (the value given is not shown).", field=name)
        return InvalidQueryError(f"Invalid {face.name(name)} {values[name]!r:.80} (from {source}): {rule}.", field=name)

    try:  # validated once, by the model; a problem is worded naming where the value came from
        return Settings(**{
            "public_key": str(values["public_key"]),
            "private_key": values["private_key"],
            "region": None if values["region"] is None else str(values["region"]),
            "project_id": None if values["project_id"] is None else str(values["project_id"]),
            "base_url": str(values["base_url"] or DEFAULT_BASE_URL),
            "timeout": values["timeout"],
            "profile": profile_name,
            "key_sources": (sources["public_key"], sources["private_key"]),
            "region_looked_at": "" if values["region"] is not None else looked("region"),
        })
    except ValidationError as exc:
        name, rule = _rule(exc)
    except InvalidQueryError as exc:  # the one rule whose error never shows the value: a URL with a password
        name, rule = exc.field or "base_url", _USERINFO_RULE
    if rule == _USERINFO_RULE:
        source = sources[name]
        shown = source if face.hides(source) else f"{face.name(name)} (from {source})"
        raise InvalidQueryError(userinfo_message(shown), field=name)
    raise invalid(name, rule)
