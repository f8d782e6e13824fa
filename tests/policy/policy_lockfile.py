"""A format-2 lockfile holding one image per rule of the policy, for the rule, audit and engine tests.

Written as ``ucloud-images`` writes it (format 2, channels per region, revocations, deprecations), so the
tests read it through ``Lockfile.load`` as the pack does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOOD = "uimage-good01"  # web@latest and web@prod in cn-bj2: passes every rule
REVOKED = "uimage-rvk01"  # old@latest: revoked since PAST
SCHEDULED = "uimage-soon01"  # soon@latest: revoked on FUTURE
DEPRECATED = "uimage-dep01"  # legacy@latest: deprecated in favour of web@prod
PAST_EOL = "uimage-eol01"  # base@latest: a Base image whose MaintainEol has passed
MARKETPLACE = "uimage-mkt01"  # mkt@latest: a Business image
UNTRACKED = "uimage-handpasted"  # in no pin
PAST, FUTURE = "2020-01-01T00:00:00Z", "2099-12-10T00:00:00Z"
RECORDED = "2026-01-05T00:00:00Z"


def _image(image_id: str, image_type: str = "Custom", eol: str | None = None) -> dict[str, Any]:
    return {
        "image_id": image_id, "image_name": f"golden-{image_id}", "image_type": image_type, "maintain_eol": eol,
        "architecture": "x86_64", "create_time": "2026-01-01T00:00:00Z", "locked_at": "2026-01-02T00:00:00Z",
    }


def _selection(channels: dict[str, dict[str, dict[str, Any]]], image_type: str = "custom") -> dict[str, Any]:
    return {"query": {"image_type": image_type, "name_regex": "^golden-", "most_recent": True}, "channels": channels}


def document(*, revoked_at: str = PAST, scheduled_at: str = FUTURE) -> dict[str, Any]:
    return {
        "version": 2,
        "selections": {
            "web": _selection({"latest": {"cn-bj2": _image(GOOD)}, "prod": {"cn-bj2": _image(GOOD)}}),
            "old": _selection({"latest": {"cn-bj2": _image(REVOKED)}}),
            "soon": _selection({"latest": {"cn-bj2": _image(SCHEDULED)}, "prod": {"cn-sh2": _image(SCHEDULED)}}),
            "legacy": _selection({"latest": {"cn-bj2": _image(DEPRECATED)}}),
            "base": _selection({"latest": {"cn-bj2": _image(PAST_EOL, "Base", "2020/06/30")}}, "base"),
            "mkt": _selection({"latest": {"cn-bj2": _image(MARKETPLACE, "Business")}}, "business"),
        },
        "revocations": {
            REVOKED: {"reason": "CVE-2026-0001 in openssh", "at": revoked_at, "recorded_at": RECORDED},
            SCHEDULED: {"reason": "superseded by the March build", "at": scheduled_at, "recorded_at": RECORDED},
        },
        "deprecations": {
            DEPRECATED: {"replacement": "web@prod", "reason": "old kernel", "recorded_at": RECORDED},
        },
        "history": [],
    }


def write(path: Path, **kwargs: str) -> Path:
    path.write_text(json.dumps(document(**kwargs), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
