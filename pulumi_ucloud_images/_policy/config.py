"""The policy's rules by name and how each is enforced: level, lockfile and host resources (its settings).

Settings come in the policy pack's config format, which ``pulumi preview --policy-pack-config`` reads too::

    {"all": "advisory",                                  # every rule's level (Pulumi's own key)
     "untracked-image": "mandatory",                     # one rule's level
     "revoked-image": {"enforcementLevel": "mandatory",
                       "lockfile": "../ucloud-images.lock.json",
                       "resources": {"my:index:Host": "imageId"}}}

``resources`` adds host resource types (type token -> the input property holding the image ID) to
:data:`DEFAULT_RESOURCES`, or points a default type at another property. What the rules find is
:mod:`~pulumi_ucloud_images._policy.rules`; neither module imports pulumi or pulumi_policy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._display import shown
from .._errors import PolicyConfigError

__all__ = [
    "BY_NAME",
    "DEFAULT_RESOURCES",
    "LEVELS",
    "RULES",
    "Level",
    "PolicyConfigError",
    "PolicySettings",
    "Rule",
    "RuleSettings",
    "read_config_file",
]

Level = Literal["mandatory", "advisory", "disabled"]
LEVELS: tuple[Level, ...] = ("mandatory", "advisory", "disabled")

# The UCloud host resources and the input that carries their image, in every language (tokens are the same).
DEFAULT_RESOURCES: Mapping[str, str] = {
    # The bridged provider (github.com/ucloud/pulumi-ucloud, provider/resources.go): ucloud_instance is
    # makeResource(ucloudUHost, "Instance"), module "uhost"; its image_id input is imageId.
    "ucloud:uhost/instance:Instance": "imageId",
    # `pulumi package add terraform-provider ucloud/ucloud`: the dynamically bridged provider puts every
    # resource in module "index" (pulumi-terraform-bridge, dynamic/info.go: tokens.SingleModule(prefix, "index",
    # tokens.MakeStandard(name)); MakeStandard writes pkg:module/lowerName:Name), so ucloud_instance becomes
    # ucloud:index/instance:Instance, and the bridge camel-cases image_id to imageId.
    "ucloud:index/instance:Instance": "imageId",
}


@dataclass(frozen=True)
class Rule:
    """One rule: its name (the policy's name, the SARIF rule id), default level, and the word a verdict uses."""

    name: str
    level: Level
    word: str
    description: str


UNTRACKED = Rule("untracked-image", "mandatory", "untracked",
                 "A host boots an image that no pin or channel of the lockfile holds.")
REVOKED = Rule("revoked-image", "mandatory", "revoked",
               "A host boots an image whose revocation in the lockfile is in force.")
SCHEDULED = Rule("scheduled-revocation", "advisory", "revocation scheduled",
                 "A host boots an image the lockfile will revoke on a later date.")
DEPRECATED = Rule("deprecated-image", "advisory", "deprecated",
                  "A host boots an image the lockfile deprecates in favour of a replacement.")
PAST_EOL = Rule("image-past-eol", "advisory", "EOL",
                "A host boots a pinned image past its end of life (MaintainEol).")
MARKETPLACE = Rule("marketplace-image", "advisory", "marketplace",
                   "A host boots a pinned marketplace (Business) image, published by a third party.")
RULES: tuple[Rule, ...] = (UNTRACKED, REVOKED, SCHEDULED, DEPRECATED, PAST_EOL, MARKETPLACE)
BY_NAME = {rule.name: rule for rule in RULES}
_CONFIG_KEYS = ("enforcementLevel", "lockfile", "resources")


@dataclass(frozen=True)
class RuleSettings:
    """How one rule is enforced: its level, the lockfile it reads (None: the nearest) and the hosts it checks."""

    level: Level
    lockfile: str | None = None
    resources: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))


@dataclass(frozen=True)
class PolicySettings:
    """The settings of every rule, from the pack's config format (:meth:`from_config`) or plain values (:meth:`of`)."""

    rules: Mapping[str, RuleSettings]

    @classmethod
    def of(
        cls, *, lockfile: str | os.PathLike[str] | None = None, resources: Mapping[str, str] | None = None,
        levels: Mapping[str, str] | None = None,
    ) -> PolicySettings:
        """The same lockfile and resources for every rule; ``levels`` by rule name (``all`` for every rule)."""
        base = {"lockfile": os.fspath(lockfile) if lockfile is not None else None, "resources": resources or {}}
        document: dict[str, Any] = {rule.name: dict(base) for rule in RULES}
        for name, level in (levels or {}).items():
            if name == "all":
                document["all"] = level
            else:
                document.setdefault(name, {})["enforcementLevel"] = level
        return cls.from_config(document)

    @classmethod
    def from_config(cls, document: Any, *, where: str = "the policy config") -> PolicySettings:
        """Settings from the policy pack's config format; the first problem is one sentence naming the key."""
        if not isinstance(document, Mapping):
            raise PolicyConfigError(f"{_cap(where)} must be a JSON object of rule names, found {_kind(document)}.")
        unknown = [str(key) for key in document if key != "all" and key not in BY_NAME]
        if unknown:
            raise PolicyConfigError(
                f"{_cap(where)} names no rule {shown(unknown[0], 60)!r}; the rules are "
                f"{', '.join(BY_NAME)} (and 'all' for every rule's level)."
            )
        every: Level | None = None
        if "all" in document:
            every = _level(document["all"], f"{where}: all")
        rules: dict[str, RuleSettings] = {}
        for rule in RULES:
            rules[rule.name] = _rule_settings(rule, document.get(rule.name), every, where)
        return cls(rules)

    def with_overrides(
        self, *, lockfile: str | None = None, resources: Mapping[str, str] | None = None,
        levels: Mapping[str, str] | None = None,
    ) -> PolicySettings:
        """These settings with a lockfile, resources and levels given on top (the audit's flags over its file)."""
        every = _level(levels["all"], "level all") if levels and "all" in levels else None
        for name in levels or {}:
            if name != "all" and name not in BY_NAME:
                raise PolicyConfigError(
                    f"There is no rule {shown(name, 60)!r} to set a level for; the rules are {', '.join(BY_NAME)} "
                    "(and 'all')."
                )
        rules = {}
        for name, rule in self.rules.items():
            level = _level(levels[name], f"level {name}") if levels and name in levels else every or rule.level
            rules[name] = RuleSettings(
                level=level,
                lockfile=lockfile if lockfile is not None else rule.lockfile,
                resources={**rule.resources, **_resources(resources or {}, "resources")},
            )
        return PolicySettings(rules)

    def resources(self) -> dict[str, str]:
        """Every host type some enabled rule checks, with its image property."""
        found: dict[str, str] = {}
        for rule in self.rules.values():
            if rule.level != "disabled":
                found.update(rule.resources)
        return found


def _rule_settings(rule: Rule, given: Any, every: Level | None, where: str) -> RuleSettings:
    at = f"{where}: {rule.name}"
    if given is None:
        return RuleSettings(level=every or rule.level)
    if isinstance(given, str):
        return RuleSettings(level=_level(given, at))
    if not isinstance(given, Mapping):
        raise PolicyConfigError(
            f"{_cap(at)} must be a level ({', '.join(LEVELS)}) or an object with {', '.join(_CONFIG_KEYS)}, "
            f"found {_kind(given)}."
        )
    extra = [str(key) for key in given if key not in _CONFIG_KEYS]
    if extra:
        raise PolicyConfigError(
            f"{_cap(at)} has the key {shown(extra[0], 60)!r}; its keys are {', '.join(_CONFIG_KEYS)}."
        )
    level = _level(given["enforcementLevel"], f"{at}.enforcementLevel") if "enforcementLevel" in given else None
    lockfile = given.get("lockfile")
    if lockfile is not None and (not isinstance(lockfile, str) or not lockfile.strip()):
        raise PolicyConfigError(f"{_cap(at)}.lockfile must be a non-empty path, found {_kind(lockfile)}.")
    return RuleSettings(
        level=level or every or rule.level,
        lockfile=lockfile,
        resources={**DEFAULT_RESOURCES, **_resources(given.get("resources", {}), f"{at}.resources")},
    )


def _resources(given: Any, at: str) -> dict[str, str]:
    if not isinstance(given, Mapping):
        raise PolicyConfigError(
            f"{_cap(at)} must be an object of resource type tokens to the property holding the image ID, found "
            f"{_kind(given)}."
        )
    for token, prop in given.items():
        if not isinstance(token, str) or token.count(":") < 2:
            raise PolicyConfigError(
                f"{_cap(at)} has the key {shown(str(token), 80)!r}, which is not a resource type token "
                "(package:module:Type, e.g. ucloud:uhost/instance:Instance)."
            )
        if not isinstance(prop, str) or not prop:
            raise PolicyConfigError(
                f"{_cap(at)}.{shown(token, 80)} must name the property holding the image ID, found {_kind(prop)}."
            )
    return dict(given)


def _level(value: Any, at: str) -> Level:
    if isinstance(value, str) and value in LEVELS:
        return value
    if value == "remediate" or value == "advisory-remediate":
        raise PolicyConfigError(f"{_cap(at)} cannot be {value!r}: these rules only report; use {', '.join(LEVELS)}.")
    shown_value = f"{shown(value, 40)!r}" if isinstance(value, str) else _kind(value)
    raise PolicyConfigError(f"{_cap(at)} must be one of {', '.join(LEVELS)}, found {shown_value}.")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {shown(value, 40)!r}"
    return "null" if value is None else f"a {type(value).__name__}"


def read_config_file(path: str | os.PathLike[str]) -> PolicySettings:
    """Settings from a pack config file (the file ``--policy-pack-config`` takes)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise PolicyConfigError(f"The policy config {path} cannot be read: {reason}.") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyConfigError(
            f"The policy config {path} is not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})."
        ) from None
    return PolicySettings.from_config(document, where=f"the policy config {path}")
