"""The golden-image rules: which hosts boot an image the lockfile does not vouch for.

One engine for the policy pack (:mod:`.policy`) and for ``ucloud-images audit``: both read the lockfile and
make no API call, so a preview stays offline and fast. This module imports neither pulumi nor pulumi_policy
(the command must start fast, and needs no extra). The rules' names, levels and settings are
:mod:`~pulumi_ucloud_images._policy.config`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from .._display import shown
from .._lockfile.lockfile import DEFAULT_SELECTION_FILE, LATEST, Holder, Lockfile, find_lockfile
from .config import (
    BY_NAME,
    DEFAULT_RESOURCES,
    DEPRECATED,
    LEVELS,
    MARKETPLACE,
    PAST_EOL,
    REVOKED,
    RULES,
    SCHEDULED,
    UNTRACKED,
    Level,
    PolicyConfigError,
    PolicySettings,
    Rule,
    RuleSettings,
    read_config_file,
)

__all__ = [
    "DEFAULT_RESOURCES",
    "LEVELS",
    "RULES",
    "Finding",
    "Level",
    "LockfileCache",
    "PolicyConfigError",
    "PolicySettings",
    "Rule",
    "RuleSettings",
    "Verdict",
    "check",
    "findings_of",
    "read_config_file",
]


@dataclass(frozen=True)
class Finding:
    """What one rule found about one host's image, at the level it is enforced."""

    rule: str
    level: Level
    message: str


@dataclass(frozen=True)
class Verdict:
    """Every finding about one host's image, and where the lockfile holds it (``web@prod/cn-bj2``)."""

    image_id: str | None
    findings: tuple[Finding, ...] = ()
    pinned_as: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """A mandatory rule failed."""
        return any(finding.level == "mandatory" for finding in self.findings)

    @property
    def summary(self) -> str:
        """``pinned as web@prod/cn-bj2; deprecated``, ``untracked``, ``unknown``: for a table."""
        if self.image_id is None:
            return "unknown until up"
        words = [BY_NAME[finding.rule].word for finding in self.findings]
        if self.pinned_as:
            words.insert(0, "pinned as " + ", ".join(self.pinned_as))
        return "; ".join(words)


# -- the lockfile, read once per change --------------------------------------------------------------------


class LockfileCache:
    """Lockfiles by path, read again only when the file changes (a preview asks once per host and rule)."""

    def __init__(self, start: Path | None = None) -> None:
        self._start = start
        self._loaded: dict[Path, tuple[tuple[int, int], Lockfile]] = {}

    def path(self, given: str | None) -> Path:
        """The lockfile a rule reads: ``given`` (relative to the working directory), else the nearest one."""
        if given is not None:
            return Path(given).expanduser()
        return find_lockfile(self._start)

    def load(self, given: str | None) -> Lockfile:
        path = self.path(given)
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (-1, -1)  # Lockfile.load says what is wrong with it
        cached = self._loaded.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        lockfile = Lockfile.load(path)
        self._loaded[path] = (stamp, lockfile)
        return lockfile


# -- the rules ---------------------------------------------------------------------------------------------


def _place(holder: Holder) -> str:
    return f"{holder.selection}@{holder.channel}/{holder.region}"


def _move_on(holders: list[Holder]) -> str:
    """What moves a host off an image its pins hold: the commands for the first pin that holds it."""
    if not holders:
        return f"'ucloud-images lock --update NAME' for a selection of {DEFAULT_SELECTION_FILE}"
    holder = holders[0]
    if holder.channel == LATEST:
        return f"'ucloud-images lock --update {holder.selection}'"
    return (
        f"'ucloud-images promote {holder.selection} --to {holder.channel}' (or 'ucloud-images rollback "
        f"{holder.selection} --channel {holder.channel}')"
    )


def findings_of(
    image_id: str, resource: str, lockfile: Lockfile, now: datetime | None = None,
) -> list[tuple[Rule, str]]:
    """Every rule ``image_id`` breaks, with the message naming the resource, the image, the rule and the fix.

    ``resource`` is how messages name the host (its URN or name). No levels here: see :func:`check`.
    """
    now = now or datetime.now(timezone.utc)
    today: date = now.date()
    image = shown(image_id, 80)
    holders = lockfile.holders(image_id)
    found: list[tuple[Rule, str]] = []
    head = f"{resource} boots image {image}"
    if not holders:
        found.append((UNTRACKED, (
            f"{head}, which no pin or channel of {lockfile.path} holds ({UNTRACKED.name}); pin it: add a selection "
            f"that finds it to {DEFAULT_SELECTION_FILE} and run 'ucloud-images lock' (then 'ucloud-images promote' "
            "for a channel), and take the host's image from the pin (PinnedImage, get_images(lock=...), "
            "'ucloud-images find --lock NAME@CHANNEL')."
        )))
    revocation = lockfile.revocation(image_id)
    if revocation is not None:
        reason = shown(revocation.reason, 200)
        if revocation.in_force(now):
            found.append((REVOKED, (
                f"{head}, revoked since {revocation.day} ({reason}) in {lockfile.path} ({REVOKED.name}); move the "
                f"host to a good image with {_move_on(holders)}, or pick a pinned image that is not revoked."
            )))
        else:
            found.append((SCHEDULED, (
                f"{head}, which {lockfile.path} revokes on {revocation.day} ({reason}) ({SCHEDULED.name}); move "
                f"the host before then with {_move_on(holders)}."
            )))
    deprecation = lockfile.deprecation(image_id)
    if deprecation is not None:
        replacement = shown(deprecation.replacement, 80)
        why = f": {shown(deprecation.reason, 200)}" if deprecation.reason else ""
        found.append((DEPRECATED, (
            f"{head}, deprecated in {lockfile.path} in favour of {replacement}{why} ({DEPRECATED.name}); pick the "
            f"replacement {replacement} for the host."
        )))
    if holders:
        pin = next((h.pin for h in holders if h.pin.maintain_eol), holders[0].pin)
        if pin.image().past_eol(today):
            names = sorted({h.selection for h in holders})
            found.append((PAST_EOL, (
                f"{head}, past its end of life on {pin.image().eol_date} ({PAST_EOL.name}); choose a newer system "
                f"(exclude_eol = true or supported_until in the selection), run 'ucloud-images lock --update "
                f"{names[0]}' and promote it."
            )))
        if any(h.pin.image_type == "Business" for h in holders):
            found.append((MARKETPLACE, (
                f"{head}, a marketplace (Business) image published by a third party ({MARKETPLACE.name}); prefer "
                "a Base or Custom image, or set this rule's level to disabled if the marketplace image is intended."
            )))
    return found


def check(
    image_id: str | None, resource: str, lockfile: Lockfile, now: datetime | None = None,
    settings: PolicySettings | None = None, *, rules: Iterable[str] | None = None,
) -> Verdict:
    """The verdict on one host's image: every finding at the level ``settings`` gives its rule (disabled ones
    left out). ``image_id`` None (an output not known at preview) is no finding: it is checked at ``up``.
    ``rules`` limits the check to some rules (a policy of the pack checks its own)."""
    if image_id is None:
        return Verdict(image_id=None)
    settings = settings or PolicySettings.of()
    wanted = set(rules) if rules is not None else set(BY_NAME)
    findings = tuple(
        Finding(rule.name, settings.rules[rule.name].level, message)
        for rule, message in findings_of(image_id, resource, lockfile, now)
        if rule.name in wanted and settings.rules[rule.name].level != "disabled"
    )
    pinned = tuple(_place(holder) for holder in lockfile.holders(image_id))
    return Verdict(image_id=image_id, findings=findings, pinned_as=pinned)
