"""An option that would do nothing where it is given is refused with a sentence, never silently ignored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import pytest

from pulumi_ucloud_images import InvalidQueryError, get_images, get_images_output
from pulumi_ucloud_images._cli import main
from pulumi_ucloud_images._emulator.service import Emulator

CENTOS: dict[str, Any] = {"region": "cn-bj2", "name_regex": r"^CentOS 7\.2 64"}


@pytest.fixture
def no_engine() -> Iterator[None]:
    pulumi.runtime.reset_options()
    yield
    pulumi.runtime.reset_options()


@pytest.mark.parametrize(
    ("arguments", "sentence"),
    [
        ({"verify": True}, "verify works only with lock=NAME (reading a pin from the lockfile); pass lock, or leave "
                           "it out."),
        ({"lockfile": "ucloud-images.lock.json"}, "lockfile works only with lock=NAME"),
        ({"verify": True, "lockfile": "x.json"}, "verify and lockfile work only with lock=NAME"),
        ({"lock": "web", "public_key": "pk"}, "With lock and without verify no API call is made, so public_key "
                                              "would do nothing; leave them out, or pass verify=True"),
    ],
)
def test_get_images_refuses_options_that_would_do_nothing(
    ucloud_emulator_env: Emulator, no_engine: None, arguments: dict[str, Any], sentence: str
) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        get_images(**CENTOS, **arguments)
    assert str(caught.value).startswith(sentence)
    assert isinstance(caught.value, pulumi.RunError)  # reported by Pulumi as one sentence
    with pytest.raises(InvalidQueryError, match=sentence[:30]):
        get_images_output(**CENTOS, **arguments)
    assert ucloud_emulator_env.request_count == 0


def test_the_same_options_in_their_context_are_accepted(
    ucloud_emulator_env: Emulator, no_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ucloud-images.toml").write_text(
        "[selections.legacy]\nregion = 'cn-bj2'\nname_regex = '^CentOS 7\\.2 64'\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["lock"]) == 0
    assert get_images(**CENTOS, verify=False).image_id == "uimage-f1chxn"  # False is no request for anything
    assert get_images(**CENTOS, lock="legacy", lockfile=tmp_path / "ucloud-images.lock.json").image_id == (
        "uimage-f1chxn"
    )
    verified = get_images(**CENTOS, lock="legacy", verify=True, public_key="ucloud-images-demo-public-key")
    assert verified.image_id == "uimage-f1chxn"


@pytest.mark.parametrize("image_type", ["base", "Custom"])
def test_include_marketplace_with_an_image_type_that_has_none_is_refused(
    image_type: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pulumi_ucloud_images import list_images

    with pytest.raises(InvalidQueryError, match=r"^Invalid include_marketplace True: adds marketplace \(Business\)"):
        list_images(image_type=image_type, include_marketplace=True, region="cn-bj2")  # before any request
    assert main(["find", "--emulator", "--image-type", image_type, "--include-marketplace"]) == 2
    assert capsys.readouterr().err.startswith("ucloud-images: error: Invalid --include-marketplace True: ")
    for fine in (["--image-type", "business", "--include-marketplace"], ["--include-marketplace"]):
        assert main(["list", "--emulator", "--output", "ids", *fine]) == 0
