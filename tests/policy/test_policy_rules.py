"""The golden-image rules on their own: every rule, every level, the settings' one-sentence errors."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._lockfile.lockfile import Lockfile
from pulumi_ucloud_images._policy.rules import (
    DEFAULT_RESOURCES,
    RULES,
    LockfileCache,
    PolicyConfigError,
    PolicySettings,
    check,
    read_config_file,
)
from tests.policy import policy_lockfile as pins

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
HOST = "urn:pulumi:dev::p::ucloud:uhost/instance:Instance::web"


@pytest.fixture
def lockfile(tmp_path: Path) -> Lockfile:
    return Lockfile.load(pins.write(tmp_path / "ucloud-images.lock.json"))


@pytest.mark.parametrize(("image_id", "rule", "level", "words"), [
    (pins.UNTRACKED, "untracked-image", "mandatory", ["no pin or channel", "'ucloud-images lock'"]),
    (pins.REVOKED, "revoked-image", "mandatory", ["revoked since 2020-01-01", "CVE-2026-0001",
                                                   "'ucloud-images lock --update old'"]),
    (pins.SCHEDULED, "scheduled-revocation", "advisory", ["revokes on 2099-12-10", "before then"]),
    (pins.DEPRECATED, "deprecated-image", "advisory", ["in favour of web@prod", "pick the replacement web@prod"]),
    (pins.PAST_EOL, "image-past-eol", "advisory", ["past its end of life on 2020-06-30", "lock --update base"]),
    (pins.MARKETPLACE, "marketplace-image", "advisory", ["marketplace (Business)"]),
])
def test_each_rule_at_its_default_level_names_host_image_rule_and_fix(
    lockfile: Lockfile, image_id: str, rule: str, level: str, words: list[str]
) -> None:
    verdict = check(image_id, HOST, lockfile, NOW)
    assert [(f.rule, f.level) for f in verdict.findings] == [(rule, level)]
    message = verdict.findings[0].message
    for word in [HOST, image_id, f"({rule})", *words]:
        assert word in message, (word, message)
    assert verdict.failed is (level == "mandatory")


def test_a_pinned_image_passes_and_says_where_it_is_pinned(lockfile: Lockfile) -> None:
    verdict = check(pins.GOOD, HOST, lockfile, NOW)
    assert verdict.findings == () and not verdict.failed
    assert verdict.pinned_as == ("web@latest/cn-bj2", "web@prod/cn-bj2")
    assert verdict.summary == "pinned as web@latest/cn-bj2, web@prod/cn-bj2"
    assert check(pins.UNTRACKED, HOST, lockfile, NOW).summary == "untracked"
    assert check(pins.REVOKED, HOST, lockfile, NOW).summary == "pinned as old@latest/cn-bj2; revoked"


def test_an_unknown_image_is_no_finding(lockfile: Lockfile) -> None:
    verdict = check(None, HOST, lockfile, NOW)
    assert verdict.findings == () and not verdict.failed and verdict.summary == "unknown until up"


def test_a_revocation_warns_until_its_moment_and_fails_from_it(tmp_path: Path) -> None:
    lockfile = Lockfile.load(pins.write(tmp_path / "l.json", revoked_at="2026-06-01T00:00:00Z"))
    before = check(pins.REVOKED, HOST, lockfile, datetime(2026, 5, 31, 23, 59, 59, tzinfo=timezone.utc))
    assert [(f.rule, f.level) for f in before.findings] == [("scheduled-revocation", "advisory")]
    at = check(pins.REVOKED, HOST, lockfile, datetime(2026, 6, 1, tzinfo=timezone.utc))
    assert [(f.rule, f.level) for f in at.findings] == [("revoked-image", "mandatory")]


def test_a_revoked_channel_pin_names_promote_and_rollback(tmp_path: Path) -> None:
    document = pins.document()
    document["selections"]["old"]["channels"] = {"latest": {}, "prod": {"cn-bj2": pins._image(pins.REVOKED)}}
    path = tmp_path / "l.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    message = check(pins.REVOKED, HOST, Lockfile.load(path), NOW).findings[0].message
    assert "'ucloud-images promote old --to prod'" in message and "rollback old --channel prod" in message


def test_an_untracked_revoked_image_breaks_both_rules(tmp_path: Path) -> None:
    document = pins.document()
    del document["selections"]["old"]
    path = tmp_path / "l.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    verdict = check(pins.REVOKED, HOST, Lockfile.load(path), NOW)
    assert [f.rule for f in verdict.findings] == ["untracked-image", "revoked-image"]


@pytest.mark.parametrize("level", ["mandatory", "advisory", "disabled"])
@pytest.mark.parametrize(("rule", "image_id"), [
    ("untracked-image", pins.UNTRACKED), ("revoked-image", pins.REVOKED), ("scheduled-revocation", pins.SCHEDULED),
    ("deprecated-image", pins.DEPRECATED), ("image-past-eol", pins.PAST_EOL), ("marketplace-image", pins.MARKETPLACE),
])
def test_every_rule_takes_every_level(lockfile: Lockfile, rule: str, image_id: str, level: str) -> None:
    settings = PolicySettings.from_config({rule: level})
    verdict = check(image_id, HOST, lockfile, NOW, settings)
    if level == "disabled":
        assert verdict.findings == () and not verdict.failed
    else:
        assert [(f.rule, f.level) for f in verdict.findings] == [(rule, level)]
        assert verdict.failed is (level == "mandatory")


def test_all_sets_every_level_and_a_rule_of_its_own_wins() -> None:
    settings = PolicySettings.from_config({"all": "advisory", "revoked-image": {"enforcementLevel": "mandatory"}})
    levels = {name: rule.level for name, rule in settings.rules.items()}
    assert levels == {**{rule.name: "advisory" for rule in RULES}, "revoked-image": "mandatory"}
    defaults = PolicySettings.of()
    assert {n: r.level for n, r in defaults.rules.items()} == {rule.name: rule.level for rule in RULES}


def test_resources_add_to_the_defaults_and_may_repoint_one() -> None:
    settings = PolicySettings.from_config({"untracked-image": {"resources": {
        "my:index:Host": "image", "ucloud:uhost/instance:Instance": "bootImage"}}})
    assert settings.rules["untracked-image"].resources == {
        **DEFAULT_RESOURCES, "my:index:Host": "image", "ucloud:uhost/instance:Instance": "bootImage"}
    assert settings.rules["revoked-image"].resources == DEFAULT_RESOURCES
    assert settings.resources()["my:index:Host"] == "image"
    assert "my:index:Host" not in PolicySettings.from_config(
        {"untracked-image": {"enforcementLevel": "disabled", "resources": {"my:index:Host": "image"}}}).resources()


def test_the_defaults_cover_both_ucloud_providers() -> None:
    assert DEFAULT_RESOURCES == {
        "ucloud:uhost/instance:Instance": "imageId", "ucloud:index/instance:Instance": "imageId"}


def test_overrides_go_on_top_of_a_config() -> None:
    base = PolicySettings.from_config({"all": "advisory", "untracked-image": {"lockfile": "a.json"}})
    settings = base.with_overrides(lockfile="b.json", resources={"x:y:Z": "img"}, levels={"image-past-eol": "disabled"})
    assert settings.rules["untracked-image"].lockfile == "b.json"
    assert settings.rules["untracked-image"].level == "advisory"
    assert settings.rules["image-past-eol"].level == "disabled"
    assert settings.rules["marketplace-image"].resources["x:y:Z"] == "img"
    assert base.with_overrides(levels={"all": "mandatory"}).rules["marketplace-image"].level == "mandatory"


@pytest.mark.parametrize(("document", "words"), [
    ([], "must be a JSON object of rule names, found a list"),
    ({"untracked": "mandatory"}, "names no rule 'untracked'; the rules are untracked-image, revoked-image"),
    ({"all": "blocking"}, "all must be one of mandatory, advisory, disabled, found 'blocking'"),
    ({"revoked-image": 3}, "must be a level (mandatory, advisory, disabled) or an object"),
    ({"revoked-image": {"level": "advisory"}},
     "has the key 'level'; its keys are enforcementLevel, lockfile, resources"),
    ({"revoked-image": {"enforcementLevel": "remediate"}}, "cannot be 'remediate': these rules only report"),
    ({"revoked-image": {"lockfile": ""}}, "lockfile must be a non-empty path"),
    ({"revoked-image": {"resources": ["a"]}}, "resources must be an object of resource type tokens"),
    ({"revoked-image": {"resources": {"Instance": "imageId"}}}, "'Instance', which is not a resource type token"),
    ({"revoked-image": {"resources": {"a:b:C": 1}}}, "a:b:C must name the property holding the image ID, found a int"),
])
def test_bad_settings_are_one_sentence_naming_the_key(document: object, words: str) -> None:
    with pytest.raises(PolicyConfigError) as caught:
        PolicySettings.from_config(document)
    message = str(caught.value)
    assert words in message and message.endswith(".") and "\n" not in message
    assert exit_code_for(caught.value) == 2


def test_a_config_file_is_read_as_the_pack_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"marketplace-image": "mandatory"}), encoding="utf-8")
    assert read_config_file(path).rules["marketplace-image"].level == "mandatory"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(PolicyConfigError, match=r"is not valid JSON at line 1 column 2"):
        read_config_file(path)
    with pytest.raises(PolicyConfigError, match=r"cannot be read: No such file"):
        read_config_file(tmp_path / "missing.json")


def test_the_lockfile_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = pins.write(tmp_path / "ucloud-images.lock.json")
    cache = LockfileCache(start=tmp_path)
    first = cache.load(None)
    assert cache.load(str(path)) is first and cache.load(None) is first
    document = pins.document()
    del document["selections"]["web"]
    path.write_text(json.dumps(document, indent=4), encoding="utf-8")
    assert pins.GOOD not in cache.load(None).pinned_ids()
