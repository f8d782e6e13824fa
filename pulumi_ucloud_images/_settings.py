"""Settings: where the region, keys, project and endpoint come from.

First found wins, per setting:

1. explicit arguments;
2. Pulumi stack config ``ucloud:*`` (only inside a Pulumi program: read only when ``pulumi`` is already
   imported, so the command line never pays for importing it);
3. environment variables ``UCLOUD_*``;
4. the UCloud CLI's ``~/.ucloud/config.json`` and ``credential.json``, for the named profile, else the
   one marked active.

The private key is held as a :class:`pydantic.SecretStr` from the moment it is read (an argument, the
environment, the config, the credential file) and a :class:`Settings` refuses to be pickled, so it cannot
leak into a repr, a log line, an error, a traceback's locals or a dynamic provider's pickle.

Messages name the places a setting was looked for in the words of the front end that asked: a
:class:`Face` says how its arguments, its config source and the profile files are called (``--region`` and
``~/.ucloud/config.json`` for the command; ``the region argument`` and ``Pulumi config ucloud:region`` for
Python and Pulumi programs).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ._errors import CredentialsError, InvalidQueryError, ProfileError
from ._files import FileProblem, read_small_file, shown_path

__all__ = [
    "CLI_FACE",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "PYTHON_FACE",
    "Face",
    "Settings",
    "resolve_region",
    "resolve_settings",
]

DEFAULT_BASE_URL = "https://api.ucloud.cn"
DEFAULT_TIMEOUT = 30.0
PROFILE_FILE_LIMIT = 1024 * 1024  # the UCloud CLI's files hold a few profiles: a megabyte is far beyond that

# setting -> (Pulumi config key, environment variable, profile-file key)
_SOURCES: dict[str, tuple[str, str, str]] = {
    "public_key": ("ucloud:publicKey", "UCLOUD_PUBLIC_KEY", "public_key"),
    "private_key": ("ucloud:privateKey", "UCLOUD_PRIVATE_KEY", "private_key"),
    "region": ("ucloud:region", "UCLOUD_REGION", "region"),
    "project_id": ("ucloud:projectId", "UCLOUD_PROJECT_ID", "project_id"),
    "base_url": ("ucloud:baseUrl", "UCLOUD_API_BASE_URL", "base_url"),
    "timeout": ("ucloud:timeout", "UCLOUD_TIMEOUT_SECOND", "timeout_sec"),
    "profile": ("ucloud:profile", "UCLOUD_PROFILE", "profile"),
}
_CREDENTIAL_KEYS = ("public_key", "private_key")
_STRING_FILE_KEYS = ("public_key", "private_key", "region", "project_id", "base_url")
_SECRET = "private_key"
_SECRET_VARIABLE = _SOURCES[_SECRET][1]


# -- how each front end names the sources -------------------------------------------------------------


@dataclass(frozen=True)
class Face:
    """How one front end names, in messages, the places a setting comes from.

    ``arguments``: how a value given explicitly is named (``--region``, ``the region argument``); a setting
    missing here cannot be given explicitly in that face (a plugin's inputs hold only the query).
    ``config``: the settings the face's config source can hold, and how that source is named for each
    (``Pulumi config ucloud:region``); a setting missing here is neither read from that source nor named.
    ``quotes_arguments``: whether a bad value given explicitly is quoted back (the command never quotes the
    value of an option: it may be a key pasted in the wrong place). ``home_paths``: whether files under the
    home directory are written ``~/.ucloud/config.json``.
    """

    arguments: Mapping[str, str]
    config: Mapping[str, str] = field(default_factory=dict)
    quotes_arguments: bool = True
    home_paths: bool = False

    def with_config(self, config: Mapping[str, str]) -> Face:
        return dataclasses.replace(self, config=dict(config))


PYTHON_FACE = Face(
    arguments={name: f"the {name} argument" for name in _SOURCES},
    config={name: f"Pulumi config {config_key}" for name, (config_key, _, _) in _SOURCES.items()},
)
"""Python and Pulumi programs: arguments by their keyword, and the ``ucloud:*`` stack config."""

CLI_FACE = Face(
    arguments={name: f"--{name.replace('_', '-')}" for name in _SOURCES},
    quotes_arguments=False,
    home_paths=True,
)
"""The ``ucloud-images`` command: flags, no Pulumi config (it never runs inside a program), ``~`` paths."""


def _profile_setting(face: Face) -> str:
    """How the face names its own profile setting, followed by " or ", or nothing if it has none."""
    named = face.arguments.get("profile") or face.config.get("profile")
    return f"{named} or " if named else ""


def _conceal(value: Any) -> SecretStr | None:
    """A private key as it arrives (text, a ``SecretStr`` or nothing) -> a ``SecretStr`` or ``None``.

    Keeps no name bound to the plain text once it returns, so no traceback or profiler sees it here.
    """
    try:
        return value if value is None or isinstance(value, SecretStr) else SecretStr(str(value))
    finally:
        del value


conceal_key = _conceal


def conceal_key_argument(arguments: dict[str, Any]) -> None:
    """Hide a ``private_key`` entry of keyword arguments in place, so the caller's dict holds only a secret."""
    if _SECRET in arguments:
        arguments[_SECRET] = _conceal(arguments.pop(_SECRET))


class _Environment:
    """The environment variables the settings read. The private key comes out as a ``SecretStr``, and the
    repr shows no variable, so neither a traceback's locals nor an error tracker sees the key here."""

    __slots__ = ("_variables",)

    def __init__(self, variables: Mapping[str, str] | None) -> None:
        self._variables = variables  # None: the process environment, looked up when read (no name holds it)

    def get(self, name: str) -> Any:
        if name == _SECRET_VARIABLE:
            return _conceal((os.environ if self._variables is None else self._variables).get(name))
        return (os.environ if self._variables is None else self._variables).get(name)

    def __repr__(self) -> str:
        return "<the UCLOUD_* environment>"


class Settings(BaseModel):
    """Resolved settings for one client. ``private_key`` is a secret and never shown."""

    # A validation error never quotes what it was given: the private key or a URL with a password in it.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    public_key: str = Field(repr=False)
    private_key: SecretStr = Field(repr=False)
    region: str | None = None
    project_id: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    profile: str | None = None
    key_sources: tuple[str, str] = Field(default=("", ""), repr=False)
    """Where the public and the private key came from (never the keys), for errors about them."""

    def __init__(self, **data: Any) -> None:
        base_url = data.get("base_url")
        if isinstance(base_url, str) and _has_userinfo(base_url):  # the library's own error, before pydantic's
            raise InvalidQueryError(_userinfo_message("Settings.base_url"), field="base_url")
        super().__init__(**data)

    @field_validator("base_url")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        if _has_userinfo(value):  # Settings.model_validate(...) does not go through __init__
            raise ValueError(_userinfo_message("base_url"))
        return value

    def __reduce__(self) -> NoReturn:
        raise TypeError("Settings hold a private key and are never pickled; resolve them where they are used.")

    def __getstate__(self) -> NoReturn:
        self.__reduce__()

    @property
    def cache_key(self) -> tuple[str, str, str]:
        """Identifies the account and endpoint without the secret."""
        return (self.base_url.rstrip("/"), self.public_key, self.project_id or "")


def _has_userinfo(url: str) -> bool:
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return "@" in url


def _userinfo_message(where: str) -> str:
    return (
        f"Invalid {where}: it carries a user name or password (user:password@...), which the UCloud API does not "
        "use and which would be shown wherever the URL is; remove it (the URL is not shown here)."
    )


def pulumi_config_reader() -> Callable[[str], str | None]:
    """Read ``ucloud:*`` from the running Pulumi program's stack config, or nothing outside a program."""
    if "pulumi" not in sys.modules:
        return lambda key: None
    import pulumi.runtime

    def read(key: str) -> str | None:
        return pulumi.runtime.get_config(key) or None  # no name holds the value: it may be the private key

    return read


# -- the UCloud CLI's profile files --------------------------------------------------------------------


@dataclass(frozen=True)
class _ProfileFile:
    path: Path
    shown: str  # as messages write it
    named_by: str | None  # the variable that named it, or None for the default file
    exists: bool
    entries: tuple[dict[str, Any], ...]

    def names(self) -> list[str]:
        return [str(entry["profile"]) for entry in self.entries]


def _load_json(path: Path, problem_prefix: str) -> Any:
    """The decoded JSON of a small regular file; a problem is one sentence, raised from this frame only
    after the text is gone (a credential file holds keys: no traceback may keep it)."""
    problem = ""
    try:
        return json.loads(read_small_file(path, PROFILE_FILE_LIMIT).decode("utf-8"))
    except FileProblem as exc:
        problem = "does not exist" if exc.missing else f"cannot be read: {exc.reason}"
    except UnicodeDecodeError:
        problem = "cannot be read: it is not UTF-8 text"
    except RecursionError:
        problem = "is nested too deeply to be a profile file"
    except ValueError as exc:
        problem = f"is not valid JSON: {exc}"
    raise ProfileError(f"{problem_prefix} {problem}.")


def _read_profile_file(path: Path, named_by: str | None, what: str, home: Path | None) -> _ProfileFile:
    """The profiles in one of the UCloud CLI's files; a missing default file is simply empty."""
    shown = shown_path(path, home)
    prefix = f"The UCloud {what} file {shown}"
    if not os.path.lexists(path):
        if named_by:
            raise ProfileError(f"{prefix} named by {named_by} does not exist.")
        return _ProfileFile(path, shown, named_by, False, ())
    data = _load_json(path, prefix)
    for entry in data if isinstance(data, list) else ():  # first of all, hide every private key it holds
        if isinstance(entry, dict) and isinstance(entry.get(_SECRET), str):
            entry[_SECRET] = _conceal(entry[_SECRET])
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        del data  # a file of the wrong shape may hold a key anywhere
        raise ProfileError(f"{prefix} must hold a JSON array of profile objects.")
    seen: set[str] = set()
    for index, entry in enumerate(data):
        name = entry.get("profile")
        if not isinstance(name, str) or not name.strip():
            raise ProfileError(f"Entry {index} of the UCloud {what} file {shown} has no \"profile\" name.")
        if name in seen:
            raise ProfileError(
                f"The UCloud {what} file {shown} has two profiles named {name!r}; keep one (which one is meant "
                "cannot be told)."
            )
        seen.add(name)
        if "active" in entry and not isinstance(entry["active"], bool):
            raise ProfileError(
                f"Profile {name!r} in the UCloud {what} file {shown} has \"active\": {entry['active']!r:.40}; "
                "it must be true or false."
            )
        for key in _STRING_FILE_KEYS:
            value = entry.get(key)
            if value is not None and not isinstance(value, (str, SecretStr)):
                raise ProfileError(
                    f"Profile {name!r} in the UCloud {what} file {shown} has a {key!r} that is not a string."
                )
    return _ProfileFile(path, shown, named_by, True, tuple(data))


def _profile_path(env: _Environment, variable: str, default: Path) -> tuple[Path, str | None]:
    named = env.get(variable)
    return (Path(named).expanduser(), variable) if named else (default, None)


# -- gathering every setting --------------------------------------------------------------------------


class _Found(NamedTuple):
    """Every setting as the sources gave it (not yet validated), and how to say where it was looked for."""

    values: dict[str, Any]
    sources: dict[str, str]
    profile: str | None
    looked: Callable[[str], str]


def _given(value: Any) -> Any:
    """A setting as given, stripped; ``None`` when it is blank or absent. A secret stays a secret."""
    if isinstance(value, SecretStr):
        return _conceal(value.get_secret_value().strip()) if value.get_secret_value().strip() else None
    value = value.strip() if isinstance(value, str) else value
    return None if value in (None, "") else value


def _listed(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def _gather(
    explicit: Mapping[str, Any],
    env: Mapping[str, str] | None,
    config: Callable[[str], str | None] | None,
    home: Path | None,
    face: Face,
) -> _Found:
    environment = _Environment(env)
    config = pulumi_config_reader() if config is None else config
    home = Path.home() if home is None else home
    shown_home = home if face.home_paths else None

    def labels(name: str) -> list[str]:
        """How the first three sources of a setting are named, in their order (each only if the face has it)."""
        named = [face.arguments[name]] if name in face.arguments else []
        if name in face.config:
            named.append(face.config[name])
        return [*named, f"the environment variable {_SOURCES[name][1]}"]

    def early(name: str) -> tuple[Any, str]:
        """The value from the first three sources, and where it came from. Blank counts as unset."""
        config_key, env_key, _ = _SOURCES[name]
        readers: list[Callable[[], Any]] = [lambda: explicit.get(name)] if name in face.arguments else []
        if name in face.config:
            readers.append(lambda: _conceal(config(config_key)) if name == _SECRET else config(config_key))
        readers.append(lambda: environment.get(env_key))
        # Every source is read, even after one has answered: a config source may refuse a value it does not
        # know yet (a preview), and a lookup must not go on as if that setting did not matter.
        given = [_given(read()) for read in readers]
        for value, where in zip(given, labels(name), strict=True):
            if value is not None:
                return value, where
        return None, ""

    config_path, config_named_by = _profile_path(
        environment, "UCLOUD_SHARED_CONFIG_FILE", home / ".ucloud" / "config.json"
    )
    credential_path, credential_named_by = _profile_path(
        environment, "UCLOUD_SHARED_CREDENTIAL_FILE", home / ".ucloud" / "credential.json"
    )
    profiles = _read_profile_file(config_path, config_named_by, "config", shown_home)
    credentials = _read_profile_file(credential_path, credential_named_by, "credential", shown_home)

    profile_name, profile_source = early("profile")
    if profile_name is None:
        active = [entry for entry in profiles.entries if entry.get("active") is True]
        if len(active) > 1:
            names = ", ".join(repr(str(entry["profile"])) for entry in active)
            raise ProfileError(
                f"The UCloud config file {profiles.shown} marks {len(active)} profiles active ({names}); mark one, "
                f"or name the profile with {_profile_setting(face)}UCLOUD_PROFILE."
            )
        profile_name = str(active[0]["profile"]) if active else None
    elif profile_name not in {*profiles.names(), *credentials.names()}:
        raise ProfileError(_missing_profile(profile_name, profile_source, face, profiles, credentials))

    def from_files(name: str) -> tuple[Any, str]:
        if profile_name is None:
            return None, ""
        file_key = _SOURCES[name][2]
        found_in = credentials if name in _CREDENTIAL_KEYS else profiles
        for entry in found_in.entries:
            value = _given(entry.get(file_key))
            if str(entry.get("profile")) == profile_name and value is not None:
                return value, f"{file_key} of profile {profile_name!r} in {found_in.shown}"
        return None, ""

    def looked(name: str) -> str:
        if name in _CREDENTIAL_KEYS:
            source = credentials
            if profile_name is not None:
                files = f"profile {profile_name!r} in {credentials.shown}{_absent(credentials)}"
            elif not credentials.exists:
                files = f"the UCloud CLI's {credentials.shown} (no such file)"
            elif profiles.exists:
                files = (
                    f"the UCloud CLI's {credentials.shown} (no profile is named, and none is marked active in "
                    f"{profiles.shown})"
                )
            else:
                files = (
                    f"the UCloud CLI's {credentials.shown} (no profile is named, and there is no {profiles.shown} "
                    "to mark one active)"
                )
        else:
            source = profiles
            if profile_name is not None:
                files = f"profile {profile_name!r} in {source.shown}{_absent(source)}"
            elif source.exists:
                files = f"the UCloud CLI's {source.shown} (no profile is named, and none is marked active in it)"
            else:
                files = f"the UCloud CLI's {source.shown} (no such file)"
        return _listed([*labels(name), files])

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in ("public_key", "private_key", "region", "project_id", "base_url", "timeout"):
        value, where = early(name)
        if value is None:
            value, where = from_files(name)
        values[name], sources[name] = value, where
    return _Found(values, sources, profile_name, looked)


def _absent(file: _ProfileFile) -> str:
    return "" if file.exists else " (no such file)"


def _missing_profile(name: str, source: str, face: Face, *files: _ProfileFile) -> str:
    asked = f"named by {source}" if source in face.arguments.values() and not face.quotes_arguments else repr(name)
    where = " nor ".join(f"{file.shown}{_absent(file)}" for file in files)
    known = sorted({profile for file in files for profile in file.names()})
    there = f"; the profiles there are {', '.join(known)}" if known else ""
    return f"The UCloud profile {asked} is in neither {where}{there}."


def resolve_region(
    *,
    region: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    config: Callable[[str], str | None] | None = None,
    home: Path | None = None,
    face: Face = PYTHON_FACE,
) -> str | None:
    """The region the settings name, by the same sources and order, without needing keys (e.g. a preview
    that only fills in a default), or ``None``."""
    found = _gather({"region": region, "profile": profile}, env, config, home, face)
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
    config: Callable[[str], str | None] | None = None,
    home: Path | None = None,
    require_region: bool = True,
    face: Face = PYTHON_FACE,
) -> Settings:
    """Resolve every setting from the sources, in order; fail with one sentence naming where it looked.

    ``env``, ``config`` and ``home`` exist for tests and for the provider plugin (which passes its own
    provider config as ``config``); by default they are the process environment, the Pulumi stack
    config and the user's home directory. ``face`` names the sources as the calling front end does.
    A missing region is reported before missing keys, in the same sentence when both are missing.
    """
    private_key = _conceal(private_key)
    explicit: dict[str, Any] = {
        "public_key": public_key,
        "private_key": private_key,
        "region": region,
        "project_id": project_id,
        "base_url": base_url,
        "timeout": timeout,
        "profile": profile,
    }
    values, sources, profile_name, looked = _gather(explicit, env, config, home, face)

    missing_keys = [name for name in _CREDENTIAL_KEYS if values[name] is None]
    no_region = require_region and values["region"] is None
    if no_region and not missing_keys:
        raise InvalidQueryError(f"No UCloud region was given; looked at {looked('region')}.", field="region")
    if missing_keys:
        first = missing_keys[0]
        label = first.replace("_", " ")
        if no_region:  # the region first, then the keys, in one sentence
            keys = "public or private key" if len(missing_keys) == 2 else label
            likewise = " (and likewise for the private key)" if len(missing_keys) == 2 else ""
            raise CredentialsError(
                f"No UCloud region was given and no {keys} was found; looked for the region at {looked('region')}, "
                f"and for the {label} at {looked(first)}{likewise}.",
                setting=first,
            )
        raise CredentialsError(f"No UCloud {label} was found; looked at {looked(first)}.", setting=first)

    def invalid(name: str, rule: str) -> InvalidQueryError:
        source = sources[name]
        if source in face.arguments.values() and not face.quotes_arguments:
            return InvalidQueryError(f"Invalid {source}: {rule} (the value given is not shown).", field=name)
        return InvalidQueryError(f"Invalid {name} {values[name]!r:.80} (from {source}): {rule}.", field=name)

    timeout_value = values["timeout"]
    try:
        timeout_seconds = DEFAULT_TIMEOUT if timeout_value is None else float(timeout_value)
    except (TypeError, ValueError):
        timeout_seconds = math.nan
    if not 0 < timeout_seconds < math.inf:
        raise invalid("timeout", "must be a positive, finite number of seconds")
    base = str(values["base_url"] or DEFAULT_BASE_URL)
    if values["base_url"] is not None and _has_userinfo(base):
        source = sources["base_url"]
        flag = source in face.arguments.values() and not face.quotes_arguments
        raise InvalidQueryError(_userinfo_message(source if flag else f"base_url (from {source})"), field="base_url")
    try:
        parts = urlsplit(base)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise invalid("base_url", "must be an http:// or https:// URL")
    try:
        port_usable = parts.port != 0  # urlsplit raises ValueError for a port not a number from 0 to 65535
    except ValueError:
        port_usable = False
    if not port_usable:
        raise invalid("base_url", "must have a port from 1 to 65535, or none")
    return Settings(
        public_key=str(values["public_key"]),
        private_key=values["private_key"],
        region=None if values["region"] is None else str(values["region"]),
        project_id=None if values["project_id"] is None else str(values["project_id"]),
        base_url=base,
        timeout=timeout_seconds,
        profile=profile_name,
        key_sources=(sources["public_key"], sources["private_key"]),
    )
