"""Where settings come from: one table of the settings, and one object per place that can hold them.

In the manner of pydantic-settings' sources, each place is an object that reads a setting and says how it is
called; :func:`~pulumi_ucloud_images._settings.settings.resolve_settings` asks them in one explicit order, first found
wins:

1. :class:`ArgumentsSource`: what the caller passed explicitly (keywords, ``--flags``);
2. :class:`ConfigSource`: a face's config, handed in by that face: a Pulumi program's stack config
   ``ucloud:*``, the provider plugin's own settings, a lockfile's ``[settings]``. The core never imports
   pulumi: without a config source handed in there is none;
3. :class:`EnvironmentSource`: the ``UCLOUD_*`` variables;
4. :class:`~pulumi_ucloud_images._settings.profiles.ProfileFilesSource`: the UCloud CLI's ``~/.ucloud/config.json`` and
``credential.json``, for the
   profile named by one of the sources above, else the one marked active.

pydantic-settings itself is not used: its sources give a dict of values, while every message here names
the place a value came from (or every place looked at) in the words of the face that asked, a config
source may refuse a value it does not know yet (a preview), and the private key must never sit outside a
``SecretStr``, not even in a source's dict.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import SecretStr

__all__ = [
    "CLI_FACE",
    "PYTHON_FACE",
    "SETTINGS",
    "ArgumentsSource",
    "ConfigSource",
    "EnvironmentSource",
    "Face",
    "Setting",
    "Source",
    "conceal_key",
    "conceal_key_argument",
]

DEFAULT_BASE_URL = "https://api.ucloud.cn"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Setting:
    """One setting, and its name in each place that can hold it. Every face's table derives from these."""

    name: str
    config_key: str  # in a Pulumi config namespace: ucloud:<config_key>, ucloud-images:<config_key>
    variable: str
    file_key: str  # in the UCloud CLI's profile files
    summary: str  # one sentence, for docs, docstrings and the schema
    secret: bool = False
    credential: bool = False  # held in credential.json, not config.json
    query_field: bool = False  # also a query field (a lookup's own region and project beat the settings')
    in_provider_config: bool = True  # a provider plugin setting
    python_type: str = "str"  # as the Python faces' parameters take it


SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("public_key", "publicKey", "UCLOUD_PUBLIC_KEY", "public_key", "UCloud API public key.",
                credential=True),
        Setting("private_key", "privateKey", "UCLOUD_PRIVATE_KEY", "private_key", "UCloud API private key.",
                secret=True, credential=True),
        Setting("region", "region", "UCLOUD_REGION", "region",
                "Region searched when a lookup names none, e.g. cn-bj2.", query_field=True),
        Setting("project_id", "projectId", "UCLOUD_PROJECT_ID", "project_id",
                "Project searched when a lookup names none.", query_field=True),
        Setting("base_url", "baseUrl", "UCLOUD_API_BASE_URL", "base_url",
                f"API endpoint. Default: {DEFAULT_BASE_URL}."),
        Setting("timeout", "timeout", "UCLOUD_TIMEOUT_SECOND", "timeout_sec",
                f"Seconds per request. Default: {DEFAULT_TIMEOUT:g}.", python_type="float"),
        Setting("profile", "profile", "UCLOUD_PROFILE", "profile",
                "Profile of the UCloud CLI files ~/.ucloud/config.json and credential.json to read settings from."),
    )
}
"""Every setting, in the order settings are resolved and listed."""

LOOKUP_ARGUMENTS = tuple(name for name, setting in SETTINGS.items() if not setting.query_field)
"""The settings a lookup takes as keywords beside its filters (the region and project are query fields)."""

_SECRET = "private_key"


# -- the private key, never in plain text for longer than it takes to wrap it ---------------------------------


def conceal_key(value: Any) -> SecretStr | None:
    """A private key as it arrives (text, a ``SecretStr`` or nothing) -> a ``SecretStr`` or ``None``.

    Keeps no name bound to the plain text once it returns, so no traceback or profiler sees it here.
    """
    try:
        return value if value is None or isinstance(value, SecretStr) else SecretStr(str(value))
    finally:
        del value


def conceal_key_argument(arguments: dict[str, Any]) -> None:
    """Hide a ``private_key`` entry of keyword arguments in place, so the caller's dict holds only a secret."""
    if _SECRET in arguments:
        arguments[_SECRET] = conceal_key(arguments.pop(_SECRET))


def given(value: Any) -> Any:
    """A setting as a source gave it, stripped; ``None`` when it is blank or absent. A secret stays a secret."""
    if isinstance(value, SecretStr):  # no name is bound to the plain text (see tests/test_secrets.py)
        return conceal_key(value.get_secret_value().strip()) if value.get_secret_value().strip() else None
    value = value.strip() if isinstance(value, str) else value
    return None if value in (None, "") else value


# -- how each front end names the places ----------------------------------------------------------------


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
    names: Mapping[str, str] = field(default_factory=dict)
    """How the face spells a setting's own name in a message (the plugin: ``baseUrl``); default the name."""

    def name(self, setting: str) -> str:
        return self.names.get(setting, setting)

    def hides(self, source: str) -> bool:
        """Whether a value from ``source`` is never quoted back: it was given explicitly to a face that
        does not quote its arguments (a flag's value may be a key pasted in the wrong place)."""
        return not self.quotes_arguments and source in self.arguments.values()

    def with_config(self, config: Mapping[str, str]) -> Face:
        return dataclasses.replace(self, config=dict(config))

    def profile_setting(self) -> str:
        """How the face names its own profile setting, followed by " or ", or nothing if it has none."""
        named = self.arguments.get("profile") or self.config.get("profile")
        return f"{named} or " if named else ""


PYTHON_FACE = Face(
    arguments={name: f"the {name} argument" for name in SETTINGS},
    config={name: f"Pulumi config ucloud:{setting.config_key}" for name, setting in SETTINGS.items()},
)
"""Python and Pulumi programs: arguments by their keyword, and (in a program) the ``ucloud:*`` stack config."""

CLI_FACE = Face(
    arguments={name: f"--{name.replace('_', '-')}" for name in SETTINGS},
    quotes_arguments=False,
    home_paths=True,
)
"""The ``ucloud-images`` command: flags, no Pulumi config (it never runs inside a program), ``~`` paths."""


# -- the sources --------------------------------------------------------------------------------------------


class Source(ABC):
    """One place settings come from. ``read`` gives a setting's raw value (the private key as a ``SecretStr``)
    or ``None``; ``label`` says how ``face`` names this place for that setting, ``None`` when it holds none."""

    @abstractmethod
    def read(self, name: str) -> Any: ...

    @abstractmethod
    def label(self, name: str, face: Face) -> str | None: ...

    def __repr__(self) -> str:  # no source shows a value: one may be the private key
        return f"<{type(self).__name__}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Settings sources may hold a private key and are never pickled.")


class ArgumentsSource(Source):
    """What the caller passed explicitly; ``None`` means not given."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = {name: conceal_key(value) if name == _SECRET else value for name, value in values.items()}

    def read(self, name: str) -> Any:
        return self._values.get(name)

    def label(self, name: str, face: Face) -> str | None:
        return face.arguments.get(name)


class ConfigSource(Source):
    """A face's config: ``read(key)`` by the setting's config key, ``namespace:configKey`` when a namespace is
    given (``ucloud:region``), else the setting's own name (a lockfile's ``[settings]``). ``labels`` name
    this source per setting; without them the face's own config labels are used."""

    __slots__ = ("_labels", "_namespace", "_reader")

    def __init__(
        self,
        read: Callable[[str], Any],
        *,
        namespace: str | None = "ucloud",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._reader, self._namespace, self._labels = read, namespace, labels

    def key(self, name: str) -> str:
        return name if self._namespace is None else f"{self._namespace}:{SETTINGS[name].config_key}"

    def read(self, name: str) -> Any:
        # The value is never bound to a name here: it may be the private key.
        if name == _SECRET:
            return conceal_key(self._reader(self.key(name)))
        return self._reader(self.key(name))

    def label(self, name: str, face: Face) -> str | None:
        return (face.config if self._labels is None else self._labels).get(name)


class EnvironmentSource(Source):
    """The ``UCLOUD_*`` environment variables (the process environment by default, read when asked)."""

    __slots__ = ("_variables",)

    def __init__(self, variables: Mapping[str, str] | None = None) -> None:
        self._variables = variables  # None: the process environment, looked up when read (no name holds it)

    def variable(self, variable: str) -> str | None:
        return (os.environ if self._variables is None else self._variables).get(variable)

    def read(self, name: str) -> Any:
        if name == _SECRET:
            return conceal_key(self.variable(SETTINGS[name].variable))
        return self.variable(SETTINGS[name].variable)

    def label(self, name: str, face: Face) -> str | None:
        return f"the environment variable {SETTINGS[name].variable}"


def _listed(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def looked_at(sources: list[Source], name: str, face: Face) -> str:
    """Every place a setting was looked for, in order, as one phrase."""
    return _listed([label for source in sources if (label := source.label(name, face)) is not None])
