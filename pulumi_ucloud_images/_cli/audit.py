"""``ucloud-images audit``: the policy pack's rules on a ``pulumi stack export``, without Pulumi's policy machinery.

Same rules, levels and settings as the pack (:mod:`.._policy_rules`): ``--policy-config`` reads the file
``pulumi preview --policy-pack-config`` takes, and ``--lockfile``, ``--level`` and ``--resource`` go on top.
Lists every checked host; exit 1 when a mandatory rule fails, 2 for bad input. No API call.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .._display import json_for_people, shown
from .._errors import PolicyConfigError
from .._files import FileProblem, read_small_file
from .._lockfile.defaults import DEFAULT_LOCKFILE
from .._policy.config import LEVELS, RULES, PolicySettings, read_config_file
from .._version import __version__
from .common import EXIT_OK

if TYPE_CHECKING:
    from .._lockfile.lockfile import Lockfile
    from .._policy.rules import Finding, LockfileCache, Verdict

__all__ = ["EXIT_MANDATORY", "register", "run"]

EXIT_MANDATORY = 1
# A state file of thousands of resources is tens of MiB; far beyond that it is not a stack export.
STATE_LIMIT = 512 * 1024 * 1024
# How Pulumi marks a secret in a checkpoint (sdk/go/common/resource/sig: Key, Secret).
_SIG_KEY, _SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"mandatory": "error", "advisory": "warning"}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "audit",
        help="Check the hosts of a 'pulumi stack export' against the lockfile (exit 1 on a mandatory finding).",
        description=(
            "Apply the policy pack's rules to the hosts of a 'pulumi stack export': untracked, revoked, "
            "deprecated, past-EOL and marketplace images. Reads the lockfile only (no API call). Exit 1 when a "
            "mandatory rule fails, 0 otherwise, 2 for bad input."
        ),
    )
    parser.add_argument(
        "--state", required=True, metavar="FILE",
        help="The output of 'pulumi stack export' ('-' for standard input).",
    )
    parser.add_argument(
        "--lockfile", metavar="PATH", help=f"Lockfile (default: the nearest {DEFAULT_LOCKFILE} upwards).",
    )
    parser.add_argument(
        "--policy-config", metavar="FILE",
        help="The policy pack's config file (as 'pulumi preview --policy-pack-config' takes): levels, lockfile, "
        "resources per rule.",
    )
    parser.add_argument(
        "--level", action="append", type=_pair("RULE=LEVEL"), metavar="RULE=LEVEL",
        help=f"A rule's level ({', '.join(LEVELS)}); RULE 'all' sets every rule. Repeatable. Rules: "
        f"{', '.join(rule.name for rule in RULES)}.",
    )
    parser.add_argument(
        "--resource", action="append", type=_pair("TYPE=PROPERTY"), metavar="TYPE=PROPERTY",
        help="Check hosts of this resource type token, whose image ID is in PROPERTY, too. Repeatable.",
    )
    parser.add_argument(
        "--output", choices=("table", "json", "sarif"), default="table", help="table (default), json or sarif.",
    )
    parser.set_defaults(handler=run)


def _pair(shape: str) -> Any:
    """An argparse type for ``KEY=VALUE``; ``accepts`` says the shape for usage errors."""

    def parse(text: str) -> tuple[str, str]:
        key, equals, value = text.partition("=")
        if not equals or not key or not value:
            raise argparse.ArgumentTypeError(shape)
        return key, value

    parse.accepts = f"of the form {shape}"  # type: ignore[attr-defined]
    return parse


@dataclass(frozen=True)
class CheckedResource:
    """One host of the state and what the rules say about it."""

    urn: str
    type: str
    verdict: Verdict
    note: str = ""  # why the image was not checked (a secret)

    @property
    def image(self) -> str:
        return self.verdict.image_id or "-"

    @property
    def summary(self) -> str:
        return self.note or self.verdict.summary


def run(args: argparse.Namespace, out: TextIO) -> int:
    settings = read_config_file(args.policy_config) if args.policy_config else PolicySettings.of()
    settings = settings.with_overrides(
        lockfile=args.lockfile, resources=dict(args.resource or ()), levels=dict(args.level or ()),
    )
    resources = _state_resources(args.state)
    checked = audit(resources, settings)
    if args.output == "json":
        out.write(json_for_people(_json(checked)) + "\n")
    elif args.output == "sarif":
        out.write(json_for_people(_sarif(checked, settings)) + "\n")
    elif not settings.resources():
        out.write("Every rule is disabled, so no host was checked.\n")
    else:
        out.write(_table(checked))
    return EXIT_MANDATORY if any(item.verdict.failed for item in checked) else EXIT_OK


def audit(
    resources: Sequence[Mapping[str, Any]], settings: PolicySettings, now: datetime | None = None,
) -> list[CheckedResource]:
    """Every host of the state that some enabled rule checks, with its verdict (the pack's own ``check``)."""
    from .._policy.rules import LockfileCache, Verdict, check
    now = now or datetime.now(timezone.utc)
    cache = LockfileCache()
    wanted = settings.resources()
    checked: list[CheckedResource] = []
    for resource in resources:
        type_, urn = resource["type"], resource["urn"]
        prop = wanted.get(type_)
        if prop is None:
            continue
        image_id, note = _image_of(resource, prop)
        if image_id is None:
            checked.append(CheckedResource(urn, type_, Verdict(image_id=None), note))
            continue
        findings: list[Finding] = []
        pinned: tuple[str, ...] = ()
        for lockfile, rules in _groups(settings, type_, cache):
            verdict = check(image_id, urn, lockfile, now, settings, rules=rules)
            findings.extend(verdict.findings)
            pinned = pinned or verdict.pinned_as
        order = [rule.name for rule in RULES]
        findings.sort(key=lambda finding: order.index(finding.rule))
        checked.append(CheckedResource(urn, type_, Verdict(image_id, tuple(findings), pinned)))
    return checked


def _groups(settings: PolicySettings, type_: str, cache: LockfileCache) -> list[tuple[Lockfile, list[str]]]:
    """The enabled rules that check ``type_``, grouped by the lockfile they read (one group, unless configured)."""
    groups: dict[Path, tuple[Lockfile, list[str]]] = {}
    for name, rule in settings.rules.items():
        if rule.level == "disabled" or type_ not in rule.resources:
            continue
        path = cache.path(rule.lockfile)
        if path not in groups:
            groups[path] = (cache.load(rule.lockfile), [])
        groups[path][1].append(name)
    return list(groups.values())


def _image_of(resource: Mapping[str, Any], prop: str) -> tuple[str | None, str]:
    """The host's image ID from its inputs (else outputs); None and why, for a secret or a missing value."""
    for side in ("inputs", "outputs"):
        values = resource.get(side)
        if isinstance(values, Mapping) and prop in values:
            value = values[prop]
            if isinstance(value, Mapping) and value.get(_SIG_KEY) == _SECRET_SIG:
                if "plaintext" not in value:
                    return None, "not checked: the image ID is a secret (export with --show-secrets)"
                try:
                    value = json.loads(value["plaintext"])
                except (TypeError, ValueError):
                    return None, "not checked: the image ID is a secret that cannot be read"
            if isinstance(value, str) and value:
                return value, ""
            return None, f"not checked: {prop} is not an image ID"
    return None, f"not checked: the host has no {prop}"


# -- reading the state -------------------------------------------------------------------------------------


def _state_resources(source: str) -> list[dict[str, Any]]:
    """The resources of a ``pulumi stack export`` (a file, or ``-``: standard input); one sentence if it is not one."""
    name = "The state on standard input" if source == "-" else f"The state file {source}"
    if source == "-":
        data = sys.stdin.buffer.read(STATE_LIMIT + 1)
        if len(data) > STATE_LIMIT:
            raise PolicyConfigError(f"{name} is larger than {STATE_LIMIT // (1024 * 1024)} MiB.")
    else:
        try:
            data = read_small_file(source, STATE_LIMIT)
        except FileProblem as problem:
            raise PolicyConfigError(f"{name} cannot be read: {problem.reason}.") from None
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_without_repeated_keys)
    except _RepeatedKey as repeated:
        raise PolicyConfigError(
            f"{name} has the key {shown(str(repeated), 80)!r} twice in one object, so which one counts is unclear; "
            "give the output of 'pulumi stack export'."
        ) from None
    except UnicodeDecodeError as exc:
        raise PolicyConfigError(f"{name} is not UTF-8 text (byte {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise PolicyConfigError(
            f"{name} is not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); give the output of "
            "'pulumi stack export'."
        ) from None
    except RecursionError:
        raise PolicyConfigError(f"{name} nests too deeply to be a 'pulumi stack export'.") from None
    deployment = document.get("deployment") if isinstance(document, dict) else None
    if not isinstance(deployment, dict):
        raise PolicyConfigError(
            f"{name} has no 'deployment' object, so it is not the output of 'pulumi stack export'."
        )
    resources = deployment.get("resources")
    if resources is None:  # an empty stack has none
        resources = []
    if not isinstance(resources, list):
        raise PolicyConfigError(f"{name} is malformed at deployment.resources: expected an array.")
    for index, resource in enumerate(resources):
        if not (isinstance(resource, dict) and isinstance(resource.get("urn"), str)
                and isinstance(resource.get("type"), str)):
            raise PolicyConfigError(
                f"{name} is malformed at deployment.resources[{index}]: expected an object with a 'urn' and a "
                "'type'."
            )
    return resources


# -- output ------------------------------------------------------------------------------------------------


def _json(checked: Iterable[CheckedResource]) -> dict[str, Any]:
    items = list(checked)
    return {
        "passed": not any(item.verdict.failed for item in items),
        "resources": [
            {
                "urn": item.urn,
                "type": item.type,
                "image_id": item.verdict.image_id,
                "verdict": item.summary,
                "pinned_as": list(item.verdict.pinned_as),
                "failed": item.verdict.failed,
                "findings": [
                    {"rule": f.rule, "level": f.level, "message": f.message} for f in item.verdict.findings
                ],
            }
            for item in items
        ],
    }


def _sarif(checked: Iterable[CheckedResource], settings: PolicySettings) -> dict[str, Any]:
    """SARIF 2.1.0: one run, a rule per policy rule, a result per finding located at the host's URN."""
    index = {rule.name: position for position, rule in enumerate(RULES)}
    rules = [
        {
            "id": rule.name,
            "name": rule.name,
            "shortDescription": {"text": rule.description},
            "defaultConfiguration": {
                "level": _SARIF_LEVEL.get(settings.rules[rule.name].level, "none"),
                "enabled": settings.rules[rule.name].level != "disabled",
            },
        }
        for rule in RULES
    ]
    results = [
        {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": _SARIF_LEVEL[finding.level],
            "message": {"text": finding.message},
            "locations": [{
                "logicalLocations": [{"fullyQualifiedName": item.urn, "kind": "resource"}],
            }],
            "properties": {"imageId": item.verdict.image_id, "resourceType": item.type},
        }
        for item in checked
        for finding in item.verdict.findings
    ]
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "ucloud-images audit", "version": __version__, "rules": rules,
            }},
            "results": results,
        }],
    }


class _RepeatedKey(ValueError):
    """A JSON object of the state names one key twice (json keeps the last, which could hide a host)."""


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedKey(key)
        found[key] = value
    return found


def _table(checked: Sequence[CheckedResource]) -> str:
    """URN, image and verdict per host, then each finding's message; a line saying so when there is no host."""
    if not checked:
        return "No host resource of a checked type is in the state.\n"
    rows = [("URN", "IMAGE", "VERDICT")] + [(shown(c.urn, 160), shown(c.image, 80), c.summary) for c in checked]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip() for row in rows]
    findings = [(c, f) for c in checked for f in c.verdict.findings]
    if findings:
        lines.append("")
        lines.extend(f"[{finding.level}] {finding.rule}: {finding.message}" for _, finding in findings)
    failed = sum(1 for c in checked if c.verdict.failed)
    lines.append("")
    lines.append(
        f"{len(checked)} host(s) checked; {failed} fail a mandatory rule." if failed
        else f"{len(checked)} host(s) checked; no mandatory rule fails."
    )
    return "\n".join(lines) + "\n"
