"""The pack's policies, called as pulumi_policy calls them (the engine tier runs them under ``pulumi preview``)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from pulumi_ucloud_images import policy
from pulumi_ucloud_images._errors import LockfileError
from tests.policy import policy_lockfile as pins

ROOT = Path(__file__).resolve().parents[2]
BRIDGED = "ucloud:uhost/instance:Instance"
TERRAFORM = "ucloud:index/instance:Instance"


def _args(resource_type: str, props: dict[str, Any], config: dict[str, Any] | None = None) -> ResourceValidationArgs:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    urn = f"urn:pulumi:dev::p::{resource_type}::web"
    return ResourceValidationArgs(resource_type, unknown_checking_proxy(props), urn, "web", options, None, config or {})


def violations(policies: list[Any], args: ResourceValidationArgs) -> list[tuple[str, str, str | None]]:
    """(policy, message, urn) for every violation any policy reports."""
    found: list[tuple[str, str, str | None]] = []
    for item in policies:
        assert isinstance(item, ResourceValidationPolicy)

        def report(message: str, urn: str | None = None, name: str = item.name) -> None:
            found.append((name, message, urn))

        item.validate(args, report)
    return found


@pytest.fixture
def lockfile(tmp_path: Path) -> Path:
    return pins.write(tmp_path / "ucloud-images.lock.json")


def test_one_policy_per_rule_at_its_default_level(lockfile: Path) -> None:
    policies = policy.ucloud_images_policies(lockfile=lockfile)
    assert [(p.name, p.enforcement_level) for p in policies] == [
        ("untracked-image", EnforcementLevel.MANDATORY), ("revoked-image", EnforcementLevel.MANDATORY),
        ("scheduled-revocation", EnforcementLevel.ADVISORY), ("deprecated-image", EnforcementLevel.ADVISORY),
        ("image-past-eol", EnforcementLevel.ADVISORY), ("marketplace-image", EnforcementLevel.ADVISORY),
    ]
    assert tuple(p.name for p in policies) == policy.RULE_NAMES
    for item in policies:
        assert item.config_schema is not None and set(item.config_schema.properties) == {"lockfile", "resources"}


@pytest.mark.parametrize("resource_type", [BRIDGED, TERRAFORM])
@pytest.mark.parametrize(("image_id", "rules"), [
    (pins.GOOD, []), (pins.UNTRACKED, ["untracked-image"]), (pins.REVOKED, ["revoked-image"]),
    (pins.SCHEDULED, ["scheduled-revocation"]), (pins.DEPRECATED, ["deprecated-image"]),
    (pins.PAST_EOL, ["image-past-eol"]), (pins.MARKETPLACE, ["marketplace-image"]),
])
def test_each_policy_reports_its_own_rule_on_both_providers_hosts(
    lockfile: Path, resource_type: str, image_id: str, rules: list[str]
) -> None:
    found = violations(policy.ucloud_images_policies(lockfile=lockfile), _args(resource_type, {"imageId": image_id}))
    assert [name for name, _, _ in found] == rules
    for name, message, urn in found:
        assert urn == f"urn:pulumi:dev::p::{resource_type}::web"
        assert urn in message and image_id in message and f"({name})" in message


def test_other_resources_and_hosts_without_an_image_are_left_alone(lockfile: Path) -> None:
    policies = policy.ucloud_images_policies(lockfile=lockfile)
    assert violations(policies, _args("ucloud:vpc/vPC:VPC", {"imageId": pins.UNTRACKED})) == []
    assert violations(policies, _args(BRIDGED, {"instanceType": "n-basic-2"})) == []


def test_an_image_unknown_at_preview_is_no_violation(lockfile: Path) -> None:
    policies = policy.ucloud_images_policies(lockfile=lockfile)
    assert violations(policies, _args(BRIDGED, {"imageId": UNKNOWN_STRING_VALUE})) == []


def test_a_secret_image_id_is_checked(lockfile: Path) -> None:
    found = violations(policy.ucloud_images_policies(lockfile=lockfile),
                       _args(BRIDGED, {"imageId": Secret(pins.UNTRACKED)}))
    assert [name for name, _, _ in found] == ["untracked-image"]


def test_the_pack_config_names_the_lockfile_and_more_hosts(lockfile: Path, tmp_path: Path) -> None:
    policies = policy.ucloud_images_policies(lockfile=tmp_path / "nowhere.json")
    config = {"lockfile": str(lockfile), "resources": {"my:index:Host": "image"}}
    found = violations(policies, _args("my:index:Host", {"image": pins.REVOKED}, config))
    assert [name for name, _, _ in found] == ["revoked-image"]
    # Without the config the factory's lockfile is read, and its absence is one sentence.
    with pytest.raises(LockfileError, match=r"nowhere\.json does not exist; run 'ucloud-images lock'"):
        violations(policies, _args(BRIDGED, {"imageId": pins.GOOD}))


def test_factory_arguments_set_resources_and_levels(lockfile: Path) -> None:
    policies = policy.ucloud_images_policies(
        lockfile=lockfile, resources={"my:index:Host": "image"}, levels={"all": "advisory", "revoked-image": "disabled"}
    )
    levels = {p.name: p.enforcement_level for p in policies}
    assert levels["revoked-image"] == EnforcementLevel.DISABLED
    assert {level for name, level in levels.items() if name != "revoked-image"} == {EnforcementLevel.ADVISORY}
    assert [n for n, _, _ in violations(policies, _args("my:index:Host", {"image": pins.UNTRACKED}))] == [
        "untracked-image"]


def test_the_rules_import_neither_pulumi_nor_pulumi_policy() -> None:
    """The audit command shares the rules with the pack; only the pack's module may import pulumi_policy."""
    for module in ("_policy/rules.py", "_policy/config.py", "_cli/audit.py"):
        tree = ast.parse((ROOT / "pulumi_ucloud_images" / module).read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {name for name in imported if name.split(".")[0] in ("pulumi", "pulumi_policy", "grpc")}, module


def test_the_example_pack_uses_the_factory() -> None:
    example = ROOT / "examples" / "policy"
    assert "from pulumi_ucloud_images.policy import ucloud_images_policy_pack" in (example / "__main__.py").read_text(
        encoding="utf-8")
    assert "pulumi-ucloud-images[policy]" in (example / "requirements.txt").read_text(encoding="utf-8")
    assert "runtime:\n  name: python" in (example / "PulumiPolicy.yaml").read_text(encoding="utf-8")


def test_the_public_names_of_the_policy_module_are_pinned() -> None:
    assert sorted(policy.__all__) == ["DEFAULT_RESOURCES", "RULE_NAMES", "ucloud_images_policies",
                                      "ucloud_images_policy_pack"]
    assert all(hasattr(policy, name) for name in policy.__all__)
