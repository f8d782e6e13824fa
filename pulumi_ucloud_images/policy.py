"""A Pulumi policy pack that keeps untracked, revoked and expired images off UCloud hosts (extra ``[policy]``).

In a pack's ``__main__.py``::

    from pulumi_ucloud_images.policy import ucloud_images_policy_pack

    ucloud_images_policy_pack()            # serves the pack to the engine; never returns

One policy per rule of :mod:`~pulumi_ucloud_images._policy.rules` (``untracked-image``, ``revoked-image``,
``scheduled-revocation``,
``deprecated-image``, ``image-past-eol``, ``marketplace-image``), so each rule's level is Pulumi's own
``enforcementLevel`` and ``pulumi preview --policy-pack-config`` sets it as for any pack. Each policy also
takes ``lockfile`` and ``resources`` in its config. The policies read the lockfile and make no API call. The
same rules run without Pulumi in ``ucloud-images audit``. See docs/policy.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
)
from pulumi_policy.proxy import UnknownValueError

from ._policy.rules import DEFAULT_RESOURCES, RULES, LockfileCache, PolicySettings, Rule, check

__all__ = ["DEFAULT_RESOURCES", "RULE_NAMES", "ucloud_images_policies", "ucloud_images_policy_pack"]

RULE_NAMES: tuple[str, ...] = tuple(rule.name for rule in RULES)

# What each policy's config may hold besides Pulumi's enforcementLevel; the engine checks it against this.
_CONFIG_SCHEMA = PolicyConfigSchema(properties={
    "lockfile": {
        "type": "string", "minLength": 1,
        "description": "The lockfile to read (relative to the pack's directory); default: the nearest "
        "ucloud-images.lock.json from the pack's directory up.",
    },
    "resources": {
        "type": "object", "additionalProperties": {"type": "string", "minLength": 1},
        "description": "Host resource type token -> the input property holding its image ID, added to the "
        "defaults (ucloud:uhost/instance:Instance and ucloud:index/instance:Instance, imageId).",
    },
})


def ucloud_images_policies(
    *, lockfile: str | os.PathLike[str] | None = None, resources: Mapping[str, str] | None = None,
    levels: Mapping[str, str] | None = None,
) -> list[Policy]:
    """The pack's policies, one per rule: ``lockfile``, ``resources`` and ``levels`` (by rule name, or ``all``)
    are the defaults the pack's config can override per policy."""
    defaults = PolicySettings.of(lockfile=lockfile, resources=resources, levels=levels)
    cache = LockfileCache()
    return [_policy(rule, defaults, cache) for rule in RULES]


def ucloud_images_policy_pack(
    name: str = "ucloud-images", *, lockfile: str | os.PathLike[str] | None = None,
    resources: Mapping[str, str] | None = None, levels: Mapping[str, str] | None = None,
    extra_policies: Sequence[Policy] = (),
) -> PolicyPack:
    """Build the pack and serve it to the engine (pulumi_policy's PolicyPack serves as it is made: under the
    engine this call does not return). ``extra_policies`` are a team's own, served in the same pack."""
    policies = [*ucloud_images_policies(lockfile=lockfile, resources=resources, levels=levels), *extra_policies]
    return PolicyPack(name=name, policies=policies, enforcement_level=EnforcementLevel.ADVISORY)


def _policy(rule: Rule, defaults: PolicySettings, cache: LockfileCache) -> ResourceValidationPolicy:
    default = defaults.rules[rule.name]

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        config = dict(args.get_config())
        settings = PolicySettings.from_config(
            # The engine applies the level (this runs only when it is not disabled); the rule just reports.
            {rule.name: {"enforcementLevel": "mandatory", "lockfile": config.get("lockfile", default.lockfile),
                         "resources": {**default.resources, **config.get("resources", {})}}},
            where="the policy pack config",
        )
        prop = settings.rules[rule.name].resources.get(args.resource_type)
        if prop is None:
            return
        image_id = _image_of(args.props, prop)
        if image_id is None:
            return  # not known at preview (checked at up), or not set at all
        # A relative path is relative to the pack's directory: the engine runs a pack there.
        lockfile = cache.load(settings.rules[rule.name].lockfile)
        verdict = check(image_id, args.urn, lockfile, settings=settings, rules=[rule.name])
        for finding in verdict.findings:
            report_violation(finding.message, args.urn)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel(default.level),
        config_schema=_CONFIG_SCHEMA,
    )


def _image_of(props: Mapping[str, Any], prop: str) -> str | None:
    """The image ID a host's inputs give, or None when it is unknown at preview, unset, or not text."""
    try:
        value = props.get(prop)
    except UnknownValueError:  # an output of another resource, known only at up
        return None
    if isinstance(value, Secret):
        value = value.value
    return value if isinstance(value, str) and value else None

