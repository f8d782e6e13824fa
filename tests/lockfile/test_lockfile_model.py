"""The lockfile's format 2 as a model: channels per region, revocations, deprecations, history, and format 1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pulumi_ucloud_images._errors import LockfileError
from pulumi_ucloud_images._lockfile.lockfile import (
    LATEST,
    LOCKFILE_VERSION,
    LockedImage,
    Lockfile,
    lockfile_text,
    parse_lock_ref,
    utc_iso,
)
from pulumi_ucloud_images._lockfile.writer import write_lockfile
from pulumi_ucloud_images._query import parse_query

QUERY = {"image_type": "custom", "name_regex": "^golden-web-", "most_recent": True}
V1 = {
    "selections": {
        "web": {
            "create_time": "2026-03-01T10:00:00Z",
            "image_id": "uimage-aaa111",
            "image_name": "golden-web-1",
            "locked_at": "2026-03-02T08:00:00Z",
            "query": QUERY,
            "region": "cn-bj2",
        }
    },
    "version": 1,
}


def image(image_id: str, name: str = "golden-web-2", eol: str | None = None) -> LockedImage:
    return LockedImage(
        image_id=image_id, image_name=name, image_type="Custom", maintain_eol=eol, architecture="x86_64",
        create_time=1772000000, locked_at="2026-03-03T00:00:00Z",
    )


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_format_1_is_read_as_format_2_with_history_that_explains_it(tmp_path: Path) -> None:
    lockfile = Lockfile.load(write_json(tmp_path / "v1.json", V1))
    pin = lockfile.pin("web")
    assert (pin.image_id, pin.region, pin.image_type, pin.architecture) == ("uimage-aaa111", "cn-bj2", None, None)
    assert pin.query == parse_query(QUERY)
    assert [(e.action, e.selection, e.channel, e.region, e.new_image) for e in lockfile.history] == [
        ("migrate", "web", LATEST, "cn-bj2", "uimage-aaa111")
    ]
    assert lockfile.unexplained() == []
    text = lockfile_text(lockfile)
    data = json.loads(text)
    assert data["version"] == LOCKFILE_VERSION == 2
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data["selections"]["web"]["channels"]["latest"]["cn-bj2"]["image_id"] == "uimage-aaa111"
    again = Lockfile.load(write_json(tmp_path / "v2.json", data))
    assert again.pin("web") == pin and again.history == lockfile.history


def test_channels_regions_and_history(tmp_path: Path) -> None:
    lockfile = Lockfile.empty(tmp_path / "l.json").with_selection("web", parse_query(QUERY), ["dev", "prod"])
    with pytest.raises(LockfileError, match=r"Channel web@prod of .* is empty; fill it with 'ucloud-images promote"):
        lockfile.pin("web", "prod")
    with pytest.raises(LockfileError, match=r"has no channel 'qa' \(its declared channels: dev, prod\)"):
        lockfile.pin("web", "qa")
    lockfile = lockfile.with_images("web", LATEST, {"cn-bj2": image("uimage-1"), "cn-sh2": image("uimage-2")}, "lock")
    lockfile = lockfile.with_images("web", "prod", lockfile.selections["web"].channels[LATEST], "promote", "go")
    with pytest.raises(LockfileError, match=r"covers the regions cn-bj2, cn-sh2; name one"):
        lockfile.pin("web", "prod")
    with pytest.raises(LockfileError, match=r"does not cover region 'hk'; it covers cn-bj2, cn-sh2"):
        lockfile.pin("web", "prod", "hk")
    assert lockfile.pin("web", "prod", "cn-sh2").image_id == "uimage-2"
    assert [(h.ref, h.region) for h in lockfile.holders("uimage-2")] == [("web", "cn-sh2"), ("web@prod", "cn-sh2")]
    assert lockfile.pinned_ids() == {"uimage-1", "uimage-2"}
    assert [(e.action, e.channel, e.region, e.old_image, e.new_image, e.note) for e in lockfile.history] == [
        ("lock", LATEST, "cn-bj2", None, "uimage-1", ""),
        ("lock", LATEST, "cn-sh2", None, "uimage-2", ""),
        ("promote", "prod", "cn-bj2", None, "uimage-1", "go"),
        ("promote", "prod", "cn-sh2", None, "uimage-2", "go"),
    ]
    assert lockfile.unexplained() == []
    # A hand edit: the channel holds an image no entry put there.
    edited = lockfile.model_copy(update={"history": lockfile.history[:-1]})
    assert [(h.ref, h.region) for h in edited.unexplained()] == [("web@prod", "cn-sh2")]


def day(n: int) -> str:
    return f"2026-01-0{n}T00:00:00Z"


def test_rollback_goes_back_one_state_per_rollback() -> None:
    lockfile = Lockfile.empty().with_selection("web", parse_query(QUERY), ["prod"])
    for n in (1, 2, 3):
        lockfile = lockfile.with_images("web", "prod", {"cn-bj2": image(f"uimage-{n}")}, "promote", time=day(n))
    assert lockfile.previous("web", "prod") == {"cn-bj2": "uimage-2"}
    lockfile = lockfile.with_images("web", "prod", {"cn-bj2": image("uimage-2")}, "rollback", time=day(4))
    assert lockfile.previous("web", "prod") == {"cn-bj2": "uimage-1"}
    lockfile = lockfile.with_images("web", "prod", {"cn-bj2": image("uimage-1")}, "rollback", time=day(5))
    assert lockfile.previous("web", "prod") is None


def test_two_moves_within_one_second_are_two_steps_of_history() -> None:
    """A script may promote twice in a second: rollback must still go back one move, not two."""
    lockfile = Lockfile.empty().with_selection("web", parse_query(QUERY), ["prod"])
    two = {"cn-bj2": image("uimage-1"), "cn-sh2": image("uimage-2")}
    lockfile = lockfile.with_images("web", "prod", two, "promote", time=day(1))
    lockfile = lockfile.with_images("web", "prod", {**two, "cn-bj2": image("uimage-3")}, "promote", time=day(2))
    lockfile = lockfile.with_images("web", "prod", {**two, "cn-bj2": image("uimage-3"), "cn-sh2": image("uimage-4")},
                                    "promote", time=day(2))
    assert lockfile.previous("web", "prod") == {"cn-bj2": "uimage-3", "cn-sh2": "uimage-2"}
    assert lockfile.history[-1].time > lockfile.history[-2].time  # written a second later


def test_revocation_is_an_error_from_its_date_and_a_warning_before(tmp_path: Path) -> None:
    now = datetime(2026, 12, 7, tzinfo=timezone.utc)
    lockfile = Lockfile.empty(tmp_path / "l.json").with_selection("web", parse_query(QUERY), ["prod"])
    lockfile = lockfile.with_images("web", "prod", {"cn-bj2": image("uimage-1")}, "promote")
    at = utc_iso(int((now + timedelta(days=3)).timestamp()))
    lockfile = lockfile.with_revocation("uimage-1", "CVE-2026-1", at)
    revocation = lockfile.revocation("uimage-1")
    assert revocation is not None and revocation.image_id == "uimage-1" and revocation.day == "2026-12-10"
    before = lockfile.verdict("uimage-1", "web@prod", now)
    assert before.error is None
    assert before.warnings[0].startswith("the pin web@prod holds image uimage-1, which will be revoked on 2026-12-10")
    after = lockfile.verdict("uimage-1", "web@prod", now + timedelta(days=4))
    assert after.error is not None and "revoked since 2026-12-10 (CVE-2026-1; recorded in" in after.error
    assert "'ucloud-images rollback web --channel prod' or 'ucloud-images promote web --to prod'" in after.error
    restored = lockfile.without_revocation("uimage-1")
    assert restored.verdict("uimage-1", "web@prod", now + timedelta(days=4)).error is None
    assert [e.action for e in restored.history][-2:] == ["revoke", "restore"]
    deprecated = restored.with_deprecation("uimage-1", "web@dev", "newer kernel")
    assert deprecated.verdict("uimage-1", "web").warnings == (
        "the pin web holds image uimage-1, deprecated in favour of web@dev: newer kernel",
    )
    # Written and read back: the keys (image IDs) are not repeated inside the entries.
    path = tmp_path / "l.json"
    write_lockfile(path, deprecated)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["revocations"] == {}
    entry = data["deprecations"]["uimage-1"]
    assert entry["replacement"] == "web@dev" and "image_id" not in entry
    reread = Lockfile.load(path)
    assert reread.deprecation("uimage-1") == deprecated.deprecation("uimage-1")
    assert reread.history == deprecated.history


def test_history_is_only_appended(tmp_path: Path) -> None:
    lockfile = Lockfile.empty().with_selection("web", parse_query(QUERY), [])
    lockfile = lockfile.with_images("web", LATEST, {"cn-bj2": image("uimage-1")}, "lock")
    rewritten = lockfile.model_copy(update={"history": ()})
    with pytest.raises(LockfileError, match="only be appended"):
        write_lockfile(tmp_path / "l.json", rewritten, previous=lockfile)
    assert not (tmp_path / "l.json").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("web", ("web", LATEST)), ("web@prod", ("web", "prod")), ("golden-web.2@dev_1", ("golden-web.2", "dev_1"))],
)
def test_lock_references(text: str, expected: tuple[str, str]) -> None:
    assert parse_lock_ref(text) == expected


@pytest.mark.parametrize("text", ["", "@prod", "web@", "web@pr od", "a@b@c"])
def test_bad_lock_references_are_one_sentence(text: str) -> None:
    with pytest.raises(LockfileError, match=r"is not NAME or NAME@CHANNEL"):
        parse_lock_ref(text)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["selections"]["web"]["channels"]["latest"]["cn-bj2"].update(image_id=""),
         "selections.web.channels.latest.cn-bj2.image_id: expected a non-empty image ID, found str ''."),
        (lambda d: d["selections"]["web"]["channels"].update(latest=[]),
         "selections.web.channels.latest: expected an object of regions, found list []."),
        (lambda d: d["selections"]["web"]["channels"]["latest"]["cn-bj2"].update(colour=1),
         "selections.web.channels.latest.cn-bj2.colour: expected only the keys architecture, create_time,"),
        (lambda d: d.update(revocations={"uimage-x": {"reason": "r", "at": "soon", "recorded_at": day(1)}}),
         "revocations.uimage-x.at: expected a UTC ISO-8601 time, found str 'soon'."),
        (lambda d: d["history"][0].update(action="paint"),
         "history.0.action: expected one of lock, update, promote"),
        (lambda d: d.update(version=3), "has format version 3, which this ucloud-images does not read"),
    ],
)
def test_malformed_format_2_names_the_place(tmp_path: Path, edit: object, message: str) -> None:
    data = json.loads(lockfile_text(Lockfile.load(write_json(tmp_path / "v1.json", V1))))
    edit(data)  # type: ignore[operator]
    with pytest.raises(LockfileError) as raised:
        Lockfile.load(write_json(tmp_path / "bad.json", data))
    assert message in str(raised.value), raised.value
