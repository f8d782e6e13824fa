"""PinnedImage: the dynamic provider's check/diff/create/read/update against the emulator, pickling, the resource."""

from __future__ import annotations

import base64
import json
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import pulumi
import pulumi.runtime
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.rpc import UNKNOWN
from pulumi.runtime.sync_await import _ensure_event_loop

from pulumi_ucloud_images import (
    AmbiguousImageError,
    ImageQuery,
    InvalidQueryError,
    NoImageFoundError,
    PinnedImage,
    SettingsNotKnownError,
)
from pulumi_ucloud_images._api.client import reset_shared_clients
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._pulumi.pin_service import PinService
from pulumi_ucloud_images._pulumi.pinned_image import PinnedImageProvider
from pulumi_ucloud_images._pulumi.property_values import PLUGIN_NAMING

GOLDEN = {"image_type": "custom", "name_regex": r"^golden-web-\d", "most_recent": True}
PINNED, PREVIOUS = "uimage-gw0314", "uimage-gw0307"  # the two newest cn-bj2 golden-web images of the catalogue
SECRET = "a-private-key-that-must-never-be-stored"


def publish_newer(emulator: Emulator, image_id: str, new_id: str) -> None:
    record = next(image for image in emulator.images(include_private=True) if image["ImageId"] == image_id)
    emulator.publish({**record, "ImageId": new_id, "ImageName": "golden-web-2026.03.21",
                      "CreateTime": record["CreateTime"] + 7 * 86400})


@pytest.fixture
def provider() -> PinnedImageProvider:
    return PinnedImageProvider()


def checked(provider: PinnedImageProvider, **news: Any) -> dict[str, Any]:
    result = provider.check({}, {**news, "__provider": "serialized"})
    assert result.failures == []
    return result.inputs


def created(provider: PinnedImageProvider, **news: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    inputs = checked(provider, **news)
    result = provider.create(inputs)
    assert result.outs is not None
    return result.id, inputs, result.outs


# -- check -----------------------------------------------------------------------------------------------


def test_check_normalises_the_inputs_and_fills_in_the_configured_region(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    inputs = checked(provider, **GOLDEN, features=["ipv6", "CloudInit"], repin="2026-03")
    # A new pin's query is resolved at check, so a preview fails on no match, and shows the image it will pin
    # (the engine previews a dynamic resource's create as its checked inputs); create then reuses that answer.
    assert inputs == {"image_type": "Custom", "name_regex": r"^golden-web-\d", "most_recent": True,
                      "features": ["CloudInit", "IPv6"], "repin": "2026-03", "region": "cn-bj2",
                      "image_id": "uimage-gw0314", "resolved_image_id": "uimage-gw0314"}
    assert ucloud_emulator_env.request_count == 1
    outs = provider.create(inputs).outs
    assert outs is not None and outs["image_id"] == "uimage-gw0314" and "resolved_image_id" not in outs
    assert outs["query"]["image_id"] is None  # the resolved image is no filter of the pin's query
    assert ucloud_emulator_env.request_count == 1


def test_create_pins_the_image_check_resolved_though_a_newer_one_appears(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    """What a preview showed is what up pins: the newer image counts only as the latest, listed anew."""
    inputs = checked(provider, **GOLDEN)
    publish_newer(ucloud_emulator_env, PINNED, "uimage-gw0321")
    reset_shared_clients()  # the listing check read is gone: create reads the cloud as it is now
    outs = provider.create(inputs).outs
    assert outs is not None
    assert (outs["image_id"], outs["latest_image_id"]) == (PINNED, "uimage-gw0321")


def test_create_refuses_an_image_that_stopped_matching_after_check(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    inputs = checked(provider, **GOLDEN)
    ucloud_emulator_env.remove(PINNED)
    reset_shared_clients()
    with pytest.raises(Exception, match=f"The image {PINNED} that the query matched when this update was checked "
                                        "no longer matches it in region cn-bj2; run 'pulumi up' again"):
        provider.create(inputs)


def test_check_keeps_an_unchanged_pins_image_and_takes_none_as_a_filter(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    """The checked image travels in the inputs: an unchanged pin keeps it without a lookup, and a previous answer
    given back (image_id with its mark) is no filter, so the query, and the diff, stay as declared."""
    _, inputs, outs = created(provider, **GOLDEN)
    count = ucloud_emulator_env.request_count
    again = provider.check(inputs, {**GOLDEN, "__provider": "serialized"})
    assert again.failures == [] and {k: v for k, v in again.inputs.items() if k != "__provider"} == inputs
    given_back = provider.check(inputs, {**inputs, "__provider": "serialized"})
    assert given_back.failures == [] and given_back.inputs["image_id"] == PINNED
    assert ucloud_emulator_env.request_count == count
    assert provider.diff(PINNED, outs, inputs).changes is False


def test_check_names_every_bad_property_at_once(ucloud_emulator_env: Emulator, provider: PinnedImageProvider) -> None:
    result = provider.check({}, {"image_type": "golden", "name_regex": "(", "states": ["gone"], "colour": "blue",
                                 "repin": 7, "most_recent": True, "__provider": "serialized"})
    failures = {failure.property: failure.reason for failure in result.failures}
    assert set(failures) == {"image_type", "name_regex", "states", "colour", "repin"}
    assert failures["image_type"] == "Invalid image_type 'golden': must be one of Base, Business, Custom."
    assert failures["name_regex"].startswith("Invalid name_regex") and "position 0" in failures["name_regex"]
    assert "Available, Making, Unavailable, Copying" in failures["states"]
    assert failures["colour"].startswith("Unknown filter 'colour'; the filters are region, zone,")
    assert failures["repin"] == "Invalid repin 7: must be a string (any new value re-pins)."
    assert ucloud_emulator_env.request_count == 0


def test_check_leaves_unknown_values_for_later(ucloud_emulator_env: Emulator, provider: PinnedImageProvider) -> None:
    result = provider.check({}, {**GOLDEN, "region": UNKNOWN, "repin": UNKNOWN})
    assert result.failures == []
    assert result.inputs["region"] == UNKNOWN and result.inputs["repin"] == UNKNOWN


def test_check_fails_on_region_when_none_is_configured(
    monkeypatch: pytest.MonkeyPatch, provider: PinnedImageProvider
) -> None:
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", DEMO_PUBLIC_KEY)
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", DEMO_PRIVATE_KEY)
    result = provider.check({}, dict(GOLDEN))
    assert [failure.property for failure in result.failures] == ["region"]
    assert "No UCloud region was given" in result.failures[0].reason


def test_check_names_a_bad_list_entry_as_an_entry(provider: PinnedImageProvider) -> None:
    result = provider.check({}, {**GOLDEN, "region": "cn-bj2", "features": ["IPv6", 7]})
    assert [f.property for f in result.failures] == ["features"]
    assert result.failures[0].reason.startswith("Invalid features entry 7: must be one of NetEnhanced,")


def test_check_reports_a_repin_number_as_written(provider: PinnedImageProvider) -> None:
    result = provider.check({}, {**GOLDEN, "region": "cn-bj2", "repin": 3.0})  # Pulumi numbers are floats
    assert [(f.property, f.reason) for f in result.failures] == [
        ("repin", "Invalid repin 3: must be a string (any new value re-pins).")
    ]


def test_a_preview_without_keys_fills_in_the_region_and_changes_nothing(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id, inputs, outs = created(provider, **GOLDEN)
    monkeypatch.delenv("UCLOUD_PUBLIC_KEY")
    monkeypatch.delenv("UCLOUD_PRIVATE_KEY")
    news = provider.check(inputs, {**GOLDEN, "__provider": "serialized"})
    assert news.failures == [] and news.inputs["region"] == "cn-bj2"  # from UCLOUD_REGION, no keys needed
    diff = provider.diff(image_id, outs, news.inputs)
    assert diff.changes is False and not diff.replaces


def test_with_no_region_configured_now_the_pin_keeps_its_region(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id, inputs, outs = created(provider, **GOLDEN)
    for name in ("UCLOUD_PUBLIC_KEY", "UCLOUD_PRIVATE_KEY", "UCLOUD_REGION"):
        monkeypatch.delenv(name)
    news = provider.check(inputs, {**GOLDEN, "__provider": "serialized"})
    assert news.failures == [] and news.inputs["region"] == "cn-bj2"
    assert provider.diff(image_id, outs, news.inputs).changes is False
    # A new pin with no region anywhere is bad input at check, keys or no keys (it was waiting for create to say so
    # when the keys were missing too).
    fresh = provider.check({}, {**GOLDEN, "__provider": "serialized"})
    assert [(f.property, f.reason.split(";")[0]) for f in fresh.failures] == [
        ("region", "No UCloud region was given and no public or private key was found")]


def test_check_reads_the_region_of_the_active_profile_without_keys(
    provider: PinnedImageProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".ucloud").mkdir()
    (tmp_path / ".ucloud" / "config.json").write_text(
        json.dumps([{"profile": "ops", "active": True, "region": "cn-sh2"}]), encoding="utf-8"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    result = provider.check({}, dict(GOLDEN))
    assert result.failures == [] and result.inputs["region"] == "cn-sh2"


@pytest.mark.parametrize("unknown", ["ucloud:region", "ucloud:profile"])
def test_a_region_setting_not_known_yet_makes_the_region_unknown(
    provider: PinnedImageProvider, unknown: str
) -> None:
    provider.configure(ConfigureRequest(Config({"ucloud:region": "cn-bj2", unknown: UNKNOWN}, "project")))
    result = provider.check({}, dict(GOLDEN))
    assert result.failures == [] and result.inputs["region"] == UNKNOWN


def test_other_settings_not_known_yet_do_not_stop_a_check_but_stop_a_lookup(provider: PinnedImageProvider) -> None:
    provider.configure(ConfigureRequest(Config({"ucloud:region": "cn-bj2", "ucloud:baseUrl": UNKNOWN,
                                                "ucloud:publicKey": UNKNOWN}, "project")))
    result = provider.check({}, dict(GOLDEN))
    assert result.failures == [] and result.inputs["region"] == "cn-bj2"
    with pytest.raises(SettingsNotKnownError, match=r"^Settings not known yet: publicKey; lookups need known"):
        provider.create(result.inputs)


# -- create / diff ---------------------------------------------------------------------------------------


def test_create_pins_the_newest_match_and_stores_its_metadata(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    image_id, _, outs = created(provider, **GOLDEN, features=["CloudInit"])
    assert image_id == outs["image_id"] == outs["latest_image_id"] == PINNED
    assert outs["image_name"] == "golden-web-2026.03.14"
    assert outs["os_name"] == "Ubuntu 22.04 64位"
    assert isinstance(outs["create_time"], int) and outs["create_time"] > 0
    assert "CloudInit" in outs["features"] and "IPv6" in outs["features"]  # the image's, not the filter
    assert outs["query"] == ImageQuery(region="cn-bj2", image_type="Custom", name_regex=r"^golden-web-\d",
                                       features=("CloudInit",), most_recent=True).model_dump(mode="json")
    assert set(outs["query"]) == set(ImageQuery.model_fields)  # every field, as the schema's ImageQuery type has
    assert "__provider" not in outs


def test_newer_images_do_not_change_the_pin(ucloud_emulator_env: Emulator, provider: PinnedImageProvider) -> None:
    image_id, inputs, outs = created(provider, **GOLDEN)
    publish_newer(ucloud_emulator_env, PINNED, "uimage-gw0321n")
    again = provider.check(inputs, {**GOLDEN, "__provider": "serialized"}).inputs
    diff = provider.diff(image_id, outs, again)
    assert diff.changes is False and not diff.replaces


def test_an_equivalent_spelling_of_the_query_is_no_change(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    image_id, _, outs = created(provider, **GOLDEN, features=["CloudInit", "IPv6"], states=["available", "making"])
    same = checked(provider, image_type="CUSTOM", name_regex=r"^golden-web-\d", most_recent=True,
                   features=["ipv6", "cloudinit"], states=["Making", "Available"], region="cn-bj2")
    assert provider.diff(image_id, outs, same).changes is False


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name_regex": r"^golden-web-2026\.03\.07"}, "name_regex"),
        ({"features": ["CloudInit", "IPv6"]}, "features"),
        ({"most_recent": False}, "most_recent"),
        ({"repin": "after-cve-2026-0001"}, "repin"),
        ({"region": "cn-sh2"}, "region"),
    ],
)
def test_a_changed_filter_or_repin_replaces_the_pin_naming_image_id(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider, change: dict[str, Any], reason: str
) -> None:
    image_id, _, outs = created(provider, **GOLDEN)
    news = provider.check({}, {**GOLDEN, **change}).inputs  # (most_recent False fails the check: ambiguous)
    diff = provider.diff(image_id, outs, news)
    assert diff.changes is True
    assert diff.replaces == [reason, "image_id"]
    assert diff.delete_before_replace is False


def test_a_state_query_without_its_defaults_is_the_same_query(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    image_id, inputs, outs = created(provider, **GOLDEN, features=["IPv6", "CloudInit"])
    older = {**outs, "query": {"region": "cn-bj2", "image_type": "Custom", "name_regex": r"^golden-web-\d",
                               "features": ["IPv6", "CloudInit"], "most_recent": True}}
    assert provider.diff(image_id, older, inputs).changes is False


def test_an_unknown_input_is_a_replacement(ucloud_emulator_env: Emulator, provider: PinnedImageProvider) -> None:
    image_id, inputs, outs = created(provider, **GOLDEN)
    diff = provider.diff(image_id, outs, {**inputs, "repin": UNKNOWN, "name_regex": UNKNOWN})
    assert diff.changes is True and diff.replaces == ["name_regex", "repin", "image_id"]


def test_a_repin_resolves_again_and_takes_the_newer_image(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    image_id, _, outs = created(provider, **GOLDEN)
    publish_newer(ucloud_emulator_env, PINNED, "uimage-gw0321n")
    reset_shared_clients()  # a later `pulumi up` runs in a new provider process
    news = checked(provider, **GOLDEN, repin="2")
    assert provider.diff(image_id, outs, news).changes is True
    replacement = provider.create(news)
    assert replacement.id == "uimage-gw0321n"
    updated = provider.update(image_id, outs, news).outs
    assert updated is not None and updated["image_id"] == "uimage-gw0321n" and updated["repin"] == "2"


# -- read (refresh) ----------------------------------------------------------------------------------------


def test_refresh_keeps_the_pin_and_reports_the_newest_match(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    image_id, _, outs = created(provider, **GOLDEN)
    publish_newer(ucloud_emulator_env, PINNED, "uimage-gw0321n")
    read = provider.read(image_id, {**outs, "__provider": "serialized"})
    assert read.id == image_id
    assert read.outs is not None
    assert read.outs["image_id"] == PINNED and read.outs["latest_image_id"] == "uimage-gw0321n"
    assert read.outs["query"] == outs["query"] and "__provider" not in read.outs
    # Inputs stay as declared, so the next diff sees no change (SDKs before ReadResult.inputs cannot change them).
    assert getattr(read, "inputs", None) is None


def test_refresh_fails_clearly_when_the_pinned_image_was_deleted(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    image_id, _, outs = created(provider, **GOLDEN)
    ucloud_emulator_env.remove(PINNED)
    with pytest.raises(NoImageFoundError) as caught:
        provider.read(image_id, outs)
    assert str(caught.value) == (
        f"The pinned image {PINNED} no longer exists in region cn-bj2; set a new repin value or change the query, "
        f"then run 'pulumi up' to pin {PREVIOUS}."
    )
    frames = traceback.extract_tb(caught.value.__traceback__)
    inner = ("_listing.py", "_transport.py", "_http.py", "_lookup.py")
    assert not any(frame.filename.endswith(inner) for frame in frames)


def test_refresh_fails_clearly_when_the_pinned_image_is_unavailable(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    image_id, _, outs = created(provider, **GOLDEN)
    ucloud_emulator_env.set_state(PINNED, "Unavailable")
    with pytest.raises(NoImageFoundError, match=rf"^The pinned image {PINNED} is Unavailable in region cn-bj2, not "):
        provider.read(image_id, outs)


def test_a_read_without_a_stored_query_checks_against_the_filter_inputs(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    image_id, inputs, outs = created(provider, **GOLDEN)
    read = provider.read(image_id, dict(inputs))  # as after PinnedImage.get: the inputs, no state
    assert read.outs is not None
    assert read.outs["image_id"] == read.outs["latest_image_id"] == PINNED  # the newest golden image, not any image
    assert read.outs["query"] == outs["query"]


def test_a_read_with_neither_a_query_nor_filters_is_one_clear_error(provider: PinnedImageProvider) -> None:
    with pytest.raises(InvalidQueryError, match=r"^The pin uimage-gw0314 has neither a query in its state nor filter"):
        provider.read(PINNED, {"__provider": "serialized"})


def test_a_create_failure_is_the_library_error_alone(ucloud_emulator_env: Emulator,
                                                     provider: PinnedImageProvider) -> None:
    inputs = {"image_type": "custom", "name_regex": "^golden-web-", "region": "cn-bj2"}  # several match
    with pytest.raises(AmbiguousImageError, match=r"^\d+ images in region cn-bj2 match ") as caught:
        provider.create(inputs)
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert [frame.name for frame in frames][1:] == ["wrapper"]  # the caller, then the provider method: no internals


@pytest.mark.parametrize(("filters", "sentence"), [
    ({"image_type": "custom", "name_regex": "^golden-web-"}, r"^\d+ images in region cn-bj2 match "),
    ({"name_regex": "^no-such-image$"}, r"^No image in region cn-bj2 matches "),
])
def test_check_of_a_new_pin_fails_with_the_lookup_sentence(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider, filters: dict[str, Any], sentence: str
) -> None:
    """At preview, not only at up (where the dynamic-provider host would add a traceback)."""
    result = provider.check({}, {**filters, "__provider": "serialized"})
    (failure,) = result.failures
    assert re.match(sentence, failure.reason)


def test_check_of_an_unchanged_pin_never_resolves_its_query(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    _, inputs, _ = created(provider, **GOLDEN)
    ucloud_emulator_env.remove(PINNED)  # the pin's image is gone: refresh's business, not check's
    ucloud_emulator_env.remove(PREVIOUS)
    before = ucloud_emulator_env.request_count
    assert provider.check(inputs, {**inputs, "__provider": "serialized"}).failures == []
    assert ucloud_emulator_env.request_count == before


def test_check_of_a_changed_query_resolves_it_again(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider
) -> None:
    _, inputs, _ = created(provider, **GOLDEN)
    news = {**inputs, "most_recent": False, "__provider": "serialized"}
    (failure,) = provider.check(inputs, news).failures
    assert re.match(r"^\d+ images in region cn-bj2 match ", failure.reason)
    (failure,) = provider.check(inputs, {**inputs, "repin": "x", "name_regex": "^nothing$"}).failures
    assert failure.reason.startswith("No image in region cn-bj2 matches ")


def test_check_without_keys_leaves_the_lookup_to_create(
    ucloud_emulator_env: Emulator, provider: PinnedImageProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UCLOUD_PRIVATE_KEY")
    result = provider.check({}, {"name_regex": "^no-such-image$", "__provider": "serialized"})
    assert result.failures == []
    assert ucloud_emulator_env.request_count == 0


def test_delete_touches_nothing(ucloud_emulator_env: Emulator, provider: PinnedImageProvider) -> None:
    image_id, _, outs = created(provider, **GOLDEN)
    before = ucloud_emulator_env.request_count
    provider.delete(image_id, outs)
    assert ucloud_emulator_env.request_count == before
    assert PINNED in {image["ImageId"] for image in ucloud_emulator_env.images()}


# -- settings and secrets ------------------------------------------------------------------------------------


def test_configured_stack_config_comes_before_the_environment(
    monkeypatch: pytest.MonkeyPatch, provider: PinnedImageProvider
) -> None:
    with Emulator() as emulator:
        monkeypatch.setenv("UCLOUD_API_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
        monkeypatch.setenv("UCLOUD_PRIVATE_KEY", "a-wrong-private-key")
        provider.configure(ConfigureRequest(Config({
            "ucloud:region": "cn-bj2", "ucloud:baseUrl": emulator.base_url,
            "ucloud:publicKey": DEMO_PUBLIC_KEY, "ucloud:privateKey": DEMO_PRIVATE_KEY,
        }, "project")))
        image_id, _, _ = created(provider, **GOLDEN)
        assert image_id == PINNED
        assert emulator.request_count == 1


def test_the_pickled_provider_holds_no_settings_and_no_key() -> None:
    with Emulator(keys={DEMO_PUBLIC_KEY: SECRET}) as emulator:
        base_url = emulator.base_url
        provider = PinnedImageProvider()
        provider.configure(ConfigureRequest(Config({
            "ucloud:region": "cn-bj2", "ucloud:baseUrl": base_url,
            "ucloud:publicKey": DEMO_PUBLIC_KEY, "ucloud:privateKey": SECRET,
        }, "project")))
        image_id, _, outs = created(provider, **GOLDEN)  # the key is used to sign, so it was resolved
        provider.read(image_id, outs)
        assert emulator.request_count == 3
    serialized = serialize_provider(provider)
    raw = base64.b64decode(serialized)
    assert SECRET.encode() not in raw and SECRET.encode() not in serialized.encode()
    assert b"cn-bj2" not in raw and base_url.encode() not in raw  # no configuration at all
    revived = dill.loads(raw)
    assert type(revived) is PinnedImageProvider and revived._config is None


# -- the resource, in a program under mocks --------------------------------------------------------------


class PinMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    # The SDK takes a bare dict from call() too; its annotation names only the (outputs, failures) pair.
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        return {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return PINNED, {**args.inputs, "image_id": PINNED, "image_name": "golden-web-2026.03.14",
                        "features": ["CloudInit"], "latest_image_id": PINNED}


@pytest.fixture
def pin_mocks() -> Iterator[PinMocks]:
    mocks = PinMocks()
    _ensure_event_loop()  # set_mocks needs a current event loop, which an earlier asyncio.run unsets
    pulumi.runtime.reset_options()
    pulumi.runtime.set_mocks(mocks, preview=False)
    yield mocks
    pulumi.runtime.reset_options()


def test_the_resource_registers_its_query_and_its_pickled_provider(pin_mocks: PinMocks) -> None:
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        pin = PinnedImage("web-golden", region="cn-bj2", image_type="custom", name_regex=r"^golden-web-\d",
                          features=["CloudInit"], most_recent=True, repin="1")
        return pulumi.Output.all(pin.image_id, pin.features, pin.latest_image_id).apply(
            lambda values: seen.update(outputs=values)
        )

    program()
    (args,) = pin_mocks.resources
    assert args.typ == "pulumi-python:dynamic/ucloud-images:PinnedImage"
    assert args.name == "web-golden"
    inputs = {key: value for key, value in args.inputs.items() if key != "__provider"}
    assert inputs == {"region": "cn-bj2", "image_type": "custom", "name_regex": r"^golden-web-\d",
                      "features": ["CloudInit"], "most_recent": True, "repin": "1"}
    provider = args.inputs["__provider"]
    serialized = provider["value"] if isinstance(provider, dict) else provider
    assert isinstance(serialized, str)
    assert type(dill.loads(base64.b64decode(serialized))) is PinnedImageProvider
    assert seen["outputs"] == [PINNED, ["CloudInit"], PINNED]


def test_the_resource_takes_every_query_field_so_no_filter_is_forgotten() -> None:
    """A new ImageQuery field must reach PinnedImage's signature too (the functions have the same test)."""
    import inspect

    parameters = inspect.signature(PinnedImage.__init__).parameters
    assert list(parameters) == ["self", "resource_name", *ImageQuery.model_fields, "repin", "lock", "lockfile", "opts"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in parameters.items()
               if name not in ("self", "resource_name"))


# -- the pin service both faces use ------------------------------------------------------------------------


def test_check_validates_the_inputs_once(ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    validated: list[Any] = []
    original = ImageQuery.model_validate

    def counting(cls: type[ImageQuery], /, data: Any, **kwargs: Any) -> ImageQuery:
        validated.append(data)
        return original(data, **kwargs)

    monkeypatch.setattr(ImageQuery, "model_validate", classmethod(counting))
    checked = PinService().check({}, {**GOLDEN, "region": "cn-bj2"})  # a new pin: looked up at check too
    assert checked.failures == [] and checked.inputs["image_type"] == "Custom"
    assert len(validated) == 1


def test_the_pin_service_words_its_messages_in_the_faces_spelling() -> None:
    plugin = PinService(naming=PLUGIN_NAMING)
    (failure,) = plugin.check({}, {"os_type": "bsd"}).failures
    assert failure.property == "os_type" and failure.reason.startswith("Invalid osType 'bsd'")
    with pytest.raises(InvalidQueryError, match=r"\(region, imageType, nameRegex, \.\.\.\)"):
        plugin.read(PINNED, {})
    (failure,) = PinService().check({}, {"os_type": "bsd"}).failures
    assert failure.reason.startswith("Invalid os_type 'bsd'")
    with pytest.raises(InvalidQueryError, match=r"\(region, image_type, name_regex, \.\.\.\)"):
        PinService().read(PINNED, {})
