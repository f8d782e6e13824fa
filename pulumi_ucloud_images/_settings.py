"""Settings: where the region, keys, project and endpoint come from.

First found wins, per setting:

1. explicit arguments;
2. Pulumi stack config ``ucloud:*`` (only inside a Pulumi program: read only when ``pulumi`` is already
   imported, so the command line never pays for importing it);
3. environment variables ``UCLOUD_*``;
4. the UCloud CLI's ``~/.ucloud/config.json`` and ``credential.json``, for the named profile, else the
   one marked active.

The private key is held as a :class:`pydantic.SecretStr` and a :class:`Settings` refuses to be pickled,
so it cannot leak into a repr, a log line, an error or a dynamic provider's pickle.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ._errors import CredentialsError, InvalidQueryError

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "Settings", "resolve_region", "resolve_settings"]

DEFAULT_BASE_URL = "https://api.ucloud.cn"
DEFAULT_TIMEOUT = 30.0

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


class Settings(BaseModel):
    """Resolved settings for one client. ``private_key`` is a secret and never shown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_key: str = Field(repr=False)
    private_key: SecretStr = Field(repr=False)
    region: str | None = None
    project_id: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    profile: str | None = None
    key_sources: tuple[str, str] = Field(default=("", ""), repr=False)
    """Where the public and the private key came from (never the keys), for errors about them."""

    def __reduce__(self) -> NoReturn:
        raise TypeError("Settings hold a private key and are never pickled; resolve them where they are used.")

    def __getstate__(self) -> NoReturn:
        self.__reduce__()

    @property
    def cache_key(self) -> tuple[str, str, str]:
        """Identifies the account and endpoint without the secret."""
        return (self.base_url.rstrip("/"), self.public_key, self.project_id or "")


def pulumi_config_reader() -> Callable[[str], str | None]:
    """Read ``ucloud:*`` from the running Pulumi program's stack config, or nothing outside a program."""
    if "pulumi" not in sys.modules:
        return lambda key: None
    import pulumi.runtime

    def read(key: str) -> str | None:
        value = pulumi.runtime.get_config(key)
        return value if value not in (None, "") else None

    return read


def _read_profile_file(path: Path, named_by: str | None, what: str) -> list[dict[str, Any]]:
    """The profiles in one of the UCloud CLI's files; a missing default file is simply empty."""
    if not path.exists():
        if named_by:
            raise CredentialsError(f"The UCloud {what} file {path} named by {named_by} does not exist.")
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise CredentialsError(f"The UCloud {what} file {path} cannot be read: {reason}.") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CredentialsError(f"The UCloud {what} file {path} is not valid JSON: {exc}.") from None
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise CredentialsError(f"The UCloud {what} file {path} must hold a JSON array of profile objects.")
    for index, entry in enumerate(data):
        name = entry.get("profile")
        if not isinstance(name, str) or not name.strip():
            raise CredentialsError(f"Entry {index} of the UCloud {what} file {path} has no \"profile\" name.")
        if "active" in entry and not isinstance(entry["active"], bool):
            raise CredentialsError(
                f"Profile {name!r} in the UCloud {what} file {path} has \"active\": {entry['active']!r}; "
                "it must be true or false."
            )
        for key in _STRING_FILE_KEYS:
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise CredentialsError(
                    f"Profile {name!r} in the UCloud {what} file {path} has a {key!r} that is not a string."
                )
    return data


def _profile_path(env: Mapping[str, str], variable: str, default: Path) -> tuple[Path, str | None]:
    named = env.get(variable)
    return (Path(named).expanduser(), variable) if named else (default, None)


class _Found(NamedTuple):
    """Every setting as the sources gave it (not yet validated), and how to say where it was looked for."""

    values: dict[str, Any]
    sources: dict[str, str]
    profile: str | None
    looked: Callable[[str], str]


def _given(value: Any) -> Any:
    """A setting as given, stripped; ``None`` when it is blank or absent."""
    value = value.strip() if isinstance(value, str) else value
    return None if value in (None, "") else value


def _early_labels(name: str) -> tuple[str, str, str]:
    """How the first three sources of a setting are named in messages, in their order."""
    config_key, env_key, _ = _SOURCES[name]
    return f"the {name} argument", f"Pulumi config {config_key}", f"the environment variable {env_key}"


def _gather(
    explicit: Mapping[str, Any],
    env: Mapping[str, str] | None,
    config: Callable[[str], str | None] | None,
    home: Path | None,
) -> _Found:
    env = os.environ if env is None else env
    config = pulumi_config_reader() if config is None else config
    home = Path.home() if home is None else home

    def early(name: str) -> tuple[Any, str]:
        """The value from the first three sources, and where it came from. Blank counts as unset."""
        config_key, env_key, _ = _SOURCES[name]
        for value, where in zip(
            (explicit.get(name), config(config_key), env.get(env_key)), _early_labels(name), strict=True
        ):
            value = _given(value)
            if value is not None:
                return value, where
        return None, ""

    config_path, config_named_by = _profile_path(env, "UCLOUD_SHARED_CONFIG_FILE", home / ".ucloud" / "config.json")
    credential_path, credential_named_by = _profile_path(
        env, "UCLOUD_SHARED_CREDENTIAL_FILE", home / ".ucloud" / "credential.json"
    )
    profiles = _read_profile_file(config_path, config_named_by, "config")
    credentials = _read_profile_file(credential_path, credential_named_by, "credential")

    profile_name = early("profile")[0]
    if profile_name is None:
        active = [entry for entry in profiles if entry.get("active") is True]
        profile_name = str(active[0].get("profile")) if active else None
    elif profiles or credentials:
        known = {str(entry.get("profile")) for entry in [*profiles, *credentials]}
        if profile_name not in known:
            raise CredentialsError(
                f"The UCloud profile {profile_name!r} is in neither {config_path} nor {credential_path}; "
                f"the profiles there are {', '.join(sorted(known)) or 'none'}."
            )

    def from_files(name: str) -> tuple[Any, str]:
        if profile_name is None:
            return None, ""
        file_key = _SOURCES[name][2]
        path, entries = (credential_path, credentials) if name in _CREDENTIAL_KEYS else (config_path, profiles)
        for entry in entries:
            value = _given(entry.get(file_key))
            if str(entry.get("profile")) == profile_name and value is not None:
                return value, f"{file_key} of profile {profile_name!r} in {path}"
        return None, ""

    def looked(name: str) -> str:
        path = credential_path if name in _CREDENTIAL_KEYS else config_path
        if profile_name is not None:
            files = f"profile {profile_name!r} in {path}{'' if path.exists() else ' (no such file)'}"
        elif config_path.exists():
            files = f"the UCloud CLI's files (no profile is named, and none is marked active in {config_path})"
        else:
            files = f"the UCloud CLI's {config_path} (no such file)"
        return f"{', '.join(_early_labels(name))} and {files}"

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in ("public_key", "private_key", "region", "project_id", "base_url", "timeout"):
        value, where = early(name)
        if value is None:
            value, where = from_files(name)
        values[name], sources[name] = value, where
    return _Found(values, sources, profile_name, looked)


def resolve_region(
    *,
    region: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    config: Callable[[str], str | None] | None = None,
    home: Path | None = None,
) -> str | None:
    """The region the settings name, by the same sources and order, without needing keys (e.g. a preview
    that only fills in a default), or ``None``."""
    found = _gather({"region": region, "profile": profile}, env, config, home)
    return None if found.values["region"] is None else str(found.values["region"])


def resolve_settings(
    *,
    public_key: str | None = None,
    private_key: str | None = None,
    region: str | None = None,
    project_id: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    config: Callable[[str], str | None] | None = None,
    home: Path | None = None,
    require_region: bool = True,
) -> Settings:
    """Resolve every setting from the sources, in order; fail with one sentence naming where it looked.

    ``env``, ``config`` and ``home`` exist for tests and for the provider plugin (which passes its own
    provider config as ``config``); by default they are the process environment, the Pulumi stack
    config and the user's home directory.
    """
    explicit: dict[str, Any] = {
        "public_key": public_key,
        "private_key": private_key,
        "region": region,
        "project_id": project_id,
        "base_url": base_url,
        "timeout": timeout,
        "profile": profile,
    }
    values, sources, profile_name, looked = _gather(explicit, env, config, home)

    for name in _CREDENTIAL_KEYS:
        if values[name] is None:
            label = name.replace("_", " ")
            raise CredentialsError(f"No UCloud {label} was found; looked at {looked(name)}.", setting=name)
    if require_region and values["region"] is None:
        raise InvalidQueryError(f"No UCloud region was given; looked at {looked('region')}.", field="region")

    timeout_value = values["timeout"]
    try:
        timeout_seconds = DEFAULT_TIMEOUT if timeout_value is None else float(timeout_value)
    except (TypeError, ValueError):
        timeout_seconds = math.nan
    if not 0 < timeout_seconds < math.inf:
        raise InvalidQueryError(
            f"Invalid timeout {timeout_value!r} (from {sources['timeout']}): must be a positive, finite number "
            "of seconds.",
            field="timeout",
        )
    base = str(values["base_url"] or DEFAULT_BASE_URL)
    try:
        parts = urlsplit(base)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise InvalidQueryError(
            f"Invalid base_url {base!r} (from {sources['base_url']}): must be an http:// or https:// URL.",
            field="base_url",
        )
    return Settings(
        public_key=str(values["public_key"]),
        private_key=SecretStr(str(values["private_key"])),
        region=None if values["region"] is None else str(values["region"]),
        project_id=None if values["project_id"] is None else str(values["project_id"]),
        base_url=base,
        timeout=timeout_seconds,
        profile=profile_name,
        key_sources=(sources["public_key"], sources["private_key"]),
    )
