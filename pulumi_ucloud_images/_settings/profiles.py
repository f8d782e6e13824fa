"""The UCloud CLI's profile files as a settings source: ``~/.ucloud/config.json`` and ``credential.json``.

Both files are read, checked and their private keys concealed before any other source is asked, so a
malformed file is said first and no traceback's locals hold a key read from them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .._errors import ProfileError
from .._files import FileProblem, read_small_file, shown_path
from .sources import _SECRET, SETTINGS, EnvironmentSource, Face, Source, conceal_key, given

__all__ = ["SHARED_FILE_VARIABLES", "ProfileFilesSource"]

SHARED_FILE_VARIABLES = ("UCLOUD_SHARED_CONFIG_FILE", "UCLOUD_SHARED_CREDENTIAL_FILE")
_NOT_TEXT = object()  # stands in for a private key that is not a string
PROFILE_FILE_LIMIT = 1024 * 1024  # the UCloud CLI's files hold a few profiles: a megabyte is far beyond that


@dataclass(frozen=True)
class _ProfileFile:
    shown: str  # as messages write it
    exists: bool
    entries: tuple[dict[str, Any], ...]

    def names(self) -> list[str]:
        return [str(entry["profile"]) for entry in self.entries]

    def absent(self) -> str:
        return "" if self.exists else " (no such file)"


_STRING_FILE_KEYS = tuple(setting.file_key for setting in SETTINGS.values() if setting.name != "timeout")


def _load_json(path: Path, problem_prefix: str) -> Any:
    """The decoded JSON of a small regular file; a problem is one sentence, raised from this frame only
    after the text is gone (a credential file holds keys: no traceback may keep it)."""
    problem = ""
    try:
        # utf-8-sig: the UCloud CLI and Windows editors may start the file with a byte order mark
        return json.loads(read_small_file(path, PROFILE_FILE_LIMIT).decode("utf-8-sig"))
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
        return _ProfileFile(shown, False, ())
    data = _load_json(path, prefix)
    for entry in data if isinstance(data, list) else ():  # first of all, hide every private key it holds
        if isinstance(entry, dict) and entry.get(_SECRET) is not None:
            # Text is kept as a secret; anything else (a list, a number) is dropped for a marker, so the
            # check below can still say it is not a string and no local holds what it was.
            entry[_SECRET] = conceal_key(entry[_SECRET]) if isinstance(entry[_SECRET], str) else _NOT_TEXT
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
    return _ProfileFile(shown, True, tuple(data))


class ProfileFilesSource(Source):
    """The UCloud CLI's files, for one profile: the one :meth:`select` is given (found in the sources before
    this one), else the one marked active, else none. The files are read when the source is made, before any
    other source is asked, so a malformed file is said even when no setting is wanted from it."""

    __slots__ = ("_config", "_credentials", "_face", "profile")

    def __init__(self, environment: EnvironmentSource, *, home: Path | None, face: Face) -> None:
        home = Path.home() if home is None else home
        shown_home = home if face.home_paths else None
        files = []
        for what, variable in zip(("config", "credential"), SHARED_FILE_VARIABLES, strict=True):
            named = environment.variable(variable)
            # os.path.expanduser leaves a ~user it does not know as it is (Path.expanduser raises)
            path = Path(os.path.expanduser(named)) if named else home / ".ucloud" / f"{what}.json"
            files.append(_read_profile_file(path, variable if named else None, what, shown_home))
        self._config, self._credentials = files
        self._face = face
        self.profile: str | None = None

    def select(self, profile: str | None, named_at: str) -> None:
        """Read the profile ``profile`` names (given at ``named_at``), else the active one; fail if it is not
        in the files, or if several are active."""
        face = self._face
        if profile is None:
            active = [entry for entry in self._config.entries if entry.get("active") is True]
            if len(active) > 1:
                names = ", ".join(repr(str(entry["profile"])) for entry in active)
                raise ProfileError(
                    f"The UCloud config file {self._config.shown} marks {len(active)} profiles active ({names}); "
                    f"mark one, or name the profile with {face.profile_setting()}UCLOUD_PROFILE."
                )
            profile = str(active[0]["profile"]) if active else None
        elif profile not in {*self._config.names(), *self._credentials.names()}:
            asked = f"named by {named_at}" if face.hides(named_at) else repr(profile)
            where = " nor ".join(f"{file.shown}{file.absent()}" for file in (self._config, self._credentials))
            known = sorted({name for file in (self._config, self._credentials) for name in file.names()})
            there = f"; the profiles there are {', '.join(known)}" if known else ""
            raise ProfileError(f"The UCloud profile {asked} is in neither {where}{there}.")
        self.profile = profile

    def _file(self, name: str) -> _ProfileFile:
        return self._credentials if SETTINGS[name].credential else self._config

    def found(self, name: str) -> tuple[Any, str]:
        """The setting from the profile, and how to say where it came from; ``(None, "")`` if it is not there."""
        if self.profile is None:
            return None, ""
        file, key = self._file(name), SETTINGS[name].file_key
        for entry in file.entries:
            value = given(entry.get(key))
            if str(entry.get("profile")) == self.profile and value is not None:
                return value, f"{key} of profile {self.profile!r} in {file.shown}"
        return None, ""

    def read(self, name: str) -> Any:
        return self.found(name)[0]

    def label(self, name: str, face: Face) -> str | None:
        """Where a setting was looked for in the files, with why nothing was there when that is known."""
        file = self._file(name)
        if self.profile is not None:
            return f"profile {self.profile!r} in {file.shown}{file.absent()}"
        if not file.exists:
            return f"the UCloud CLI's {file.shown} (no such file)"
        if file is self._config:
            return f"the UCloud CLI's {file.shown} (no profile is named, and none is marked active in it)"
        if self._config.exists:
            return (f"the UCloud CLI's {file.shown} (no profile is named, and none is marked active in "
                    f"{self._config.shown})")
        return (f"the UCloud CLI's {file.shown} (no profile is named, and there is no {self._config.shown} to mark "
                "one active)")


