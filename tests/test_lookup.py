"""End to end over loopback HTTP: query -> settings -> signed DescribeImage pages -> filters -> one image.

Every test runs against a real emulator serving a small catalogue written here, so each expectation can be
read off the catalogue below.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pulumi_ucloud_images import (
    AmbiguousImageError,
    APIError,
    Client,
    CredentialsError,
    Image,
    ImageQuery,
    InvalidQueryError,
    LookupResult,
    NoImageFoundError,
    ResponseFormatError,
    RetryPolicy,
    Settings,
    TransportError,
    list_images,
    lookup_images,
)
from pulumi_ucloud_images._api.image import parse_page
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._emulator.catalog import synthetic_catalog
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._lookup import fetch_listing

T0 = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp())
DAY = 86400


def record(image_id: str, name: str, *, zone: str = "cn-bj2-02", created: int = T0, os_type: str = "Linux",
           os_name: str | None = None, image_type: str = "Base", func_type: str = "uhost", state: str = "Available",
           features: tuple[str, ...] = ("NetEnhanced", "CloudInit"), project: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ImageId": image_id, "ImageName": name, "Zone": zone, "OsType": os_type,
        "OsName": name.strip() if os_name is None else os_name, "ImageType": image_type, "FuncType": func_type,
        "State": state, "CreateTime": created, "Features": list(features), "ImageSize": 20, "Tag": "Default",
    }
    if project:
        data["_ProjectId"] = project
    return data


CATALOG = [
    record("uimage-c79a", "CentOS 7.9 64位", created=T0 + 1 * DAY, features=("NetEnhanced", "HotPlug", "CloudInit")),
    record("uimage-c79b", " CentOS 7.9 64位", zone="cn-bj2-03", created=T0 + 2 * DAY),
    record("uimage-ub22", "Ubuntu 22.04 64位", created=T0 + 3 * DAY, features=("NetEnhanced", "CloudInit", "IPv6")),
    record("uimage-ub2a", "Ubuntu 22.04 64位", created=T0 + 4 * DAY, features=("CloudInit", "Aarch64_Type")),
    record("uimage-ub2m", "Ubuntu 22.04 64位", created=T0 + 5 * DAY, state="Making"),
    record("uimage-ub2u", "Ubuntu 22.04 64位", created=T0 - 90 * DAY, state="Unavailable"),
    record("uimage-w19", "Windows 2019 64位", os_type="Windows", created=T0 + 6 * DAY),
    record("uimage-gpu1", "Ubuntu 22.04 64位 GPU CUDA12", zone="cn-bj2-05", func_type="gpu", created=T0 + 7 * DAY,
           features=("NetEnhanced", "GPU", "Vgpu_NVIDIA")),
    record("uimage-bt79", "宝塔Linux面板 7.9", os_name="CentOS 7.9 64位", image_type="Business", func_type="app",
           created=T0 + 8 * DAY),
    record("uimage-r94a", "Rocky 9.4 64位", created=T0 + 9 * DAY),
    record("uimage-r94b", "Rocky 9.4 64位", zone="cn-bj2-03", created=T0 + 9 * DAY),
    record("uimage-deb1", "Debian 11.7 64位", created=T0 + 10 * DAY, features=("NetEnhnced",)),
    record("uimage-gw07", "golden-web-2026.03.07", image_type="Custom", created=T0 + 11 * DAY, project="org-platform"),
    record("uimage-gw14", "golden-web-2026.03.14", image_type="Custom", created=T0 + 12 * DAY, project="org-platform"),
    record("uimage-gd01", "golden-etl-2026.02.01", image_type="Custom", created=T0 + 13 * DAY, project="org-data"),
    record("uimage-sh79", "CentOS 7.9 64位", zone="cn-sh2-01", created=T0 + 14 * DAY),
]
REGION = "cn-bj2"


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    with Emulator(CATALOG) as server:
        yield server


@pytest.fixture
def emulator(shared_emulator: Emulator) -> Iterator[Emulator]:
    """The module's emulator with an empty request log and no faults (no test changes its catalogue)."""
    shared_emulator.reset_requests()
    shared_emulator.clear_faults()
    yield shared_emulator
    shared_emulator.clear_faults()


@pytest.fixture
def settings(emulator: Emulator) -> Settings:
    return Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=REGION,
                    base_url=emulator.base_url, timeout=5)


NO_SLEEP = RetryPolicy(attempts=3, sleep=lambda seconds: None)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings, retry=NO_SLEEP) as instance:
        yield instance


def ids(images: list[Image]) -> list[str]:
    return [image.image_id for image in images]


def sent(emulator: Emulator) -> list[dict[str, str]]:
    """The DescribeImage parameters the emulator received (no paging, no signature)."""
    return [
        {key: value for key, value in request.params.items() if key not in ("Offset", "Limit")}
        for request in emulator.requests
    ]


# -- every filter ----------------------------------------------------------------------------------------


def test_the_default_query_lists_every_available_image_of_the_region_and_default_project(client: Client) -> None:
    # ... but the marketplace image uimage-bt79, which only a query that names the marketplace gets.
    assert ids(list_images(client=client)) == [
        "uimage-gw14", "uimage-gw07", "uimage-deb1", "uimage-r94a", "uimage-r94b", "uimage-gpu1",
        "uimage-w19", "uimage-ub2a", "uimage-ub22", "uimage-c79b", "uimage-c79a",
    ]
    assert ids(list_images(client=client, include_marketplace=True))[5] == "uimage-bt79"


def test_region_from_the_query_wins_over_the_settings(client: Client, emulator: Emulator) -> None:
    assert lookup_images(region="cn-sh2", client=client).image_id == "uimage-sh79"
    assert sent(emulator)[-1] == {"Action": "DescribeImage", "Region": "cn-sh2"}
    assert "uimage-sh79" not in ids(list_images(client=client))


def test_an_empty_region_is_no_match(client: Client) -> None:
    with pytest.raises(NoImageFoundError) as caught:
        lookup_images(region="us-ws", client=client)
    assert str(caught.value).startswith("No image in region us-ws matches states=[Available]: DescribeImage listed")


@pytest.mark.parametrize(
    ("filters", "param", "value", "expected"),
    [
        ({"zone": "cn-bj2-03"}, "Zone", "cn-bj2-03", ["uimage-r94b", "uimage-c79b"]),
        ({"image_type": "business"}, "ImageType", "Business", ["uimage-bt79"]),
        ({"os_type": "WINDOWS"}, "OsType", "Windows", ["uimage-w19"]),
        ({"func_type": "GPU"}, "FuncType", "gpu", ["uimage-gpu1"]),
        ({"func_type": "app"}, "FuncType", "app", ["uimage-bt79"]),
        ({"image_id": "uimage-deb1"}, "ImageId", "uimage-deb1", ["uimage-deb1"]),
    ],
)
def test_server_side_filters_are_sent_to_describe_image(
    client: Client, emulator: Emulator, filters: dict[str, Any], param: str, value: str, expected: list[str]
) -> None:
    assert ids(list_images(client=client, **filters)) == expected
    assert sent(emulator) == [{"Action": "DescribeImage", "Region": REGION, param: value}]


def test_ids_are_sent_as_image_ids_n(client: Client, emulator: Emulator) -> None:
    found = list_images(client=client, ids=["uimage-c79a", "uimage-w19", "uimage-ub2m"])
    assert ids(found) == ["uimage-w19", "uimage-c79a"]  # uimage-ub2m is Making
    assert sent(emulator) == [{"Action": "DescribeImage", "Region": REGION, "ImageIds.0": "uimage-c79a",
                               "ImageIds.1": "uimage-ub2m", "ImageIds.2": "uimage-w19"}]  # a set: sent sorted


def test_project_id_selects_the_projects_custom_images(client: Client, emulator: Emulator) -> None:
    assert ids(list_images(client=client, image_type="custom")) == ["uimage-gw14", "uimage-gw07"]
    assert ids(list_images(client=client, image_type="custom", project_id="org-data")) == ["uimage-gd01"]
    assert sent(emulator)[-1]["ProjectId"] == "org-data"


def test_the_settings_project_is_used_when_the_query_has_none(settings: Settings) -> None:
    with Client(settings.model_copy(update={"project_id": "org-data"}), retry=NO_SLEEP) as client:
        assert lookup_images(image_type="custom", client=client).image_id == "uimage-gd01"


def test_an_unknown_project_is_an_api_error(client: Client) -> None:
    with pytest.raises(APIError) as caught:
        lookup_images(project_id="org-nope", client=client)
    assert caught.value.ret_code == 292
    assert "check the project ID" in str(caught.value)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"name_regex": "64位$"}, ["uimage-deb1", "uimage-r94a", "uimage-r94b", "uimage-w19", "uimage-ub2a",
                                   "uimage-ub22", "uimage-c79b", "uimage-c79a"]),
        ({"name_regex": "面板"}, []),
        ({"name_regex": "面板", "include_marketplace": True}, ["uimage-bt79"]),
        ({"name_regex": r"^CentOS 7\.9"}, ["uimage-c79a"]),
        ({"name_regex": r"^ CentOS 7\.9"}, ["uimage-c79b"]),
        ({"name_regex": r"^\s*CentOS 7\.9"}, ["uimage-c79b", "uimage-c79a"]),
        ({"name_regex": "CentOS"}, ["uimage-c79b", "uimage-c79a"]),
        ({"name_regex": "^golden-web-"}, ["uimage-gw14", "uimage-gw07"]),
        ({"os_name_regex": r"^CentOS 7\.9"}, ["uimage-c79b", "uimage-c79a"]),
        ({"os_name_regex": r"^CentOS 7\.9", "include_marketplace": True},
         ["uimage-bt79", "uimage-c79b", "uimage-c79a"]),
        ({"os_name_regex": "^Windows"}, ["uimage-w19"]),
        ({"features": ["IPv6"]}, ["uimage-ub22"]),
        ({"features": ["hotplug", "cloudinit"]}, ["uimage-c79a"]),
        ({"features": ["NetEnhnced"], "name_regex": "^Debian"}, ["uimage-deb1"]),
        ({"features": ["NetEnhanced"], "os_type": "linux", "name_regex": "^(Debian|CentOS)"},
         ["uimage-deb1", "uimage-c79a"]),
        ({"architecture": "aarch64"}, ["uimage-ub2a"]),
        ({"architecture": "arm64", "name_regex": "^Ubuntu"}, ["uimage-ub2a"]),
        ({"architecture": "x86_64", "name_regex": r"^Ubuntu 22\.04 64位$"}, ["uimage-ub22"]),
        ({"states": ["Making"]}, ["uimage-ub2m"]),
        ({"states": ["unavailable", "MAKING"]}, ["uimage-ub2m", "uimage-ub2u"]),
        ({"states": ["Copying"]}, []),
    ],
)
def test_client_side_filters(client: Client, emulator: Emulator, filters: dict[str, Any], expected: list[str]) -> None:
    assert ids(list_images(client=client, **filters)) == expected
    assert set(sent(emulator)[0]) <= {"Action", "Region", "OsType"}


def test_client_side_filters_are_never_sent(client: Client, emulator: Emulator) -> None:
    list_images(client=client, name_regex="x", os_name_regex="y", features=["IPv6"], architecture="aarch64",
                states=["Making"], most_recent=True)
    assert sent(emulator) == [{"Action": "DescribeImage", "Region": REGION}]


def test_every_filter_at_once(client: Client, emulator: Emulator) -> None:
    result = lookup_images(
        region="cn-bj2", zone="cn-bj2-02", project_id="org-platform", image_type="base", os_type="linux",
        func_type="uhost", image_id="uimage-ub22", ids=["uimage-ub22", "uimage-c79a"], name_regex="^Ubuntu",
        os_name_regex="22.04", features=["IPv6", "NetEnhnced"], architecture="x86_64", states=["available"],
        client=client,
    )
    assert result.image_id == "uimage-ub22"
    assert sent(emulator) == [{
        "Action": "DescribeImage", "Region": "cn-bj2", "Zone": "cn-bj2-02", "ProjectId": "org-platform",
        "ImageType": "Base", "OsType": "Linux", "FuncType": "uhost", "ImageId": "uimage-ub22",
        "ImageIds.0": "uimage-c79a", "ImageIds.1": "uimage-ub22",
    }]


# -- selection rules -------------------------------------------------------------------------------------


def test_exactly_one_match_needs_no_most_recent(client: Client) -> None:
    result = lookup_images(name_regex=r"^Ubuntu 22\.04", architecture="aarch64", client=client)
    assert isinstance(result, LookupResult)
    assert (result.image_id, result.ids, result.total_count, result.region) == (
        "uimage-ub2a", ("uimage-ub2a",), 1, REGION
    )
    assert result.image.features == ("CloudInit", "Aarch64_Type")


def test_most_recent_picks_the_newest_and_carries_every_match(client: Client) -> None:
    result = lookup_images(os_type="linux", name_regex=r"^Ubuntu 22\.04", architecture="x86_64", most_recent=True,
                           client=client)
    assert result.image_id == "uimage-gpu1"
    assert result.ids == ("uimage-gpu1", "uimage-ub22")
    assert [image.image_id for image in result.images] == list(result.ids)
    assert [image.create_time for image in result.images] == sorted(
        (image.create_time for image in result.images), reverse=True
    )
    assert result.total_count == 2
    assert result.image.image_name == "Ubuntu 22.04 64位 GPU CUDA12"


def test_most_recent_breaks_a_create_time_tie_by_image_id(client: Client) -> None:
    result = lookup_images(name_regex="^Rocky", most_recent=True, client=client)
    assert result.image_id == "uimage-r94a"
    assert result.ids == ("uimage-r94a", "uimage-r94b")


def test_zero_matches_name_the_region_and_every_criterion(client: Client) -> None:
    with pytest.raises(NoImageFoundError) as caught:
        lookup_images(zone="cn-bj2-02", os_type="linux", name_regex=r"^Ubuntu 22\.04", features=["IPv6"],
                      architecture="aarch64", client=client)
    assert str(caught.value) == (
        "No image in region cn-bj2 matches zone='cn-bj2-02', os_type='Linux', name_regex='^Ubuntu 22\\.04', "
        "features=[IPv6], architecture='aarch64', states=[Available]: DescribeImage listed 10 images, none "
        "passing every filter."
    )
    assert exit_code_for(caught.value) == 3


def test_zero_matches_mention_images_in_other_states(client: Client) -> None:
    with pytest.raises(NoImageFoundError) as caught:
        lookup_images(name_regex=r"^Ubuntu 22\.04 64位$", features=["HotPlug"], client=client)
    assert str(caught.value).endswith("none passing every filter.")
    with pytest.raises(NoImageFoundError) as caught:
        lookup_images(name_regex=r"^Ubuntu", zone="cn-bj2-02", features=["NetEnhanced", "CloudInit"],
                      architecture="x86_64", os_type="linux", image_type="base", ids=["uimage-ub2m", "uimage-ub2u"],
                      client=client)
    assert str(caught.value).endswith(
        "DescribeImage listed 2 images, none passing every filter, though 1 Making and 1 Unavailable images would "
        "pass if states allowed them."
    )


def test_several_matches_without_most_recent_list_the_candidates(client: Client) -> None:
    with pytest.raises(AmbiguousImageError) as caught:
        lookup_images(name_regex=r"^Ubuntu 22\.04", client=client)
    assert str(caught.value) == (
        "3 images in region cn-bj2 match name_regex='^Ubuntu 22\\.04', states=[Available]: "
        "uimage-gpu1 'Ubuntu 22.04 64位 GPU CUDA12' created 2025-01-08 00:00 UTC; "
        "uimage-ub2a 'Ubuntu 22.04 64位' created 2025-01-05 00:00 UTC; "
        "uimage-ub22 'Ubuntu 22.04 64位' created 2025-01-04 00:00 UTC. "
        "Set most_recent to take the newest, or tighten the filters."
    )
    assert caught.value.image_ids == ["uimage-gpu1", "uimage-ub2a", "uimage-ub22"]
    assert exit_code_for(caught.value) == 4


def test_many_matches_list_ten_and_count_the_rest(client: Client) -> None:
    with pytest.raises(AmbiguousImageError) as caught:
        lookup_images(client=client)
    message = str(caught.value)
    assert message.startswith("11 images in region cn-bj2 match states=[Available]: uimage-gw14 ")
    assert message.count(" created ") == 10
    assert message.endswith("; and 1 more. Set most_recent to take the newest, or tighten the filters.")


# -- the ways in: query objects, mappings, keywords, settings ----------------------------------------------


def test_an_image_query_or_a_mapping_with_keyword_overrides(client: Client) -> None:
    query = ImageQuery(name_regex="^Rocky")
    assert lookup_images(query, most_recent=True, client=client).image_id == "uimage-r94a"
    assert lookup_images({"name_regex": "^Rocky", "zone": "cn-bj2-03"}, client=client).image_id == "uimage-r94b"
    assert lookup_images({"name_regex": "^Rocky"}, zone="cn-bj2-03", client=client).image_id == "uimage-r94b"


def test_settings_from_keyword_arguments(emulator: Emulator) -> None:
    result = lookup_images(name_regex="^Windows", region=REGION, public_key=DEMO_PUBLIC_KEY,
                           private_key=DEMO_PRIVATE_KEY, base_url=emulator.base_url, timeout=5)
    assert result.image_id == "uimage-w19"


def test_settings_from_the_environment(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCLOUD_API_BASE_URL", emulator.base_url)
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", DEMO_PUBLIC_KEY)
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", DEMO_PRIVATE_KEY)
    monkeypatch.setenv("UCLOUD_REGION", "cn-sh2")
    assert lookup_images().image_id == "uimage-sh79"
    assert lookup_images(region=REGION, name_regex="^Windows").image_id == "uimage-w19"


def test_settings_from_a_profile_file(emulator: Emulator) -> None:
    folder = Path.home() / ".ucloud"  # the conftest points HOME at an empty directory
    folder.mkdir()
    profiles = [{"profile": "emu", "active": True, "region": REGION, "base_url": emulator.base_url}]
    keys = [{"profile": "emu", "public_key": DEMO_PUBLIC_KEY, "private_key": DEMO_PRIVATE_KEY}]
    (folder / "config.json").write_text(json.dumps(profiles), encoding="utf-8")
    (folder / "credential.json").write_text(json.dumps(keys), encoding="utf-8")
    assert lookup_images(name_regex="^Windows").image_id == "uimage-w19"


def test_a_client_and_settings_together_are_a_programming_error(client: Client, settings: Settings) -> None:
    with pytest.raises(TypeError, match="Pass a client or settings, not both"):
        lookup_images(client=client, settings=settings)
    with pytest.raises(TypeError, match="Pass a client or public_key, not both"):
        lookup_images(client=client, public_key="pk")
    with pytest.raises(TypeError, match="Pass settings or timeout, not both"):
        lookup_images(settings=settings, timeout=3)


def test_fetch_listing_returns_what_the_server_listed(client: Client) -> None:
    listing = fetch_listing(client=client, os_type="windows")
    assert (listing.region, listing.query.os_type) == (REGION, "Windows")
    assert [image.image_id for image in listing.images] == ["uimage-w19"]


# -- bad input fails before any request ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "start"),
    [
        ({"os_type": "macos"}, "Invalid os_type 'macos': must be one of Linux, Windows."),
        ({"image_type": "golden"}, "Invalid image_type 'golden': must be one of Base, Business, Custom."),
        ({"architecture": "sparc"}, "Invalid architecture 'sparc': must be one of x86_64, aarch64."),
        ({"states": ["Gone"]}, "Invalid states entry 'Gone': must be one of Available, Making, Unavailable, Copying."),
        ({"func_type": "fpga"}, "Invalid func_type 'fpga': must be one of gpu, app, uhost."),
        ({"features": ["Turbo"]}, "Invalid features entry 'Turbo': must be one of NetEnhanced,"),
        ({"name_regex": "(CentOS"}, "Invalid name_regex '(CentOS': not a valid regular expression: missing ), "
                                    "unterminated subpattern at position 0."),
        ({"os_name_regex": "[z-a]"}, "Invalid os_name_regex '[z-a]': not a valid regular expression: bad character "
                                     "range z-a at position 1."),
        ({"regoin": "cn-bj2"}, "Unknown filter 'regoin' (did you mean 'region'?)"),
    ],
)
def test_bad_input_is_one_sentence_before_any_request(
    client: Client, emulator: Emulator, filters: dict[str, Any], start: str
) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        lookup_images(client=client, **filters)
    assert str(caught.value).startswith(start)
    assert exit_code_for(caught.value) == 2
    with pytest.raises(InvalidQueryError):
        list_images(client=client, **filters)
    assert emulator.request_count == 0 and client.requests_sent == 0


def test_a_missing_region_fails_before_any_request(emulator: Emulator, settings: Settings) -> None:
    without_region = settings.model_copy(update={"region": None})
    with pytest.raises(InvalidQueryError) as caught:
        lookup_images(settings=without_region)
    assert str(caught.value) == "No UCloud region was given: pass region, or settings that have one."
    with pytest.raises(InvalidQueryError) as caught:
        lookup_images(public_key=DEMO_PUBLIC_KEY, private_key=DEMO_PRIVATE_KEY, base_url=emulator.base_url)
    assert str(caught.value).startswith("No UCloud region was given; looked at the region argument, ")
    assert emulator.request_count == 0


@pytest.mark.parametrize("missing", ["public_key", "private_key"])
def test_a_missing_key_fails_before_any_request(emulator: Emulator, missing: str) -> None:
    keys: dict[str, Any] = {"public_key": DEMO_PUBLIC_KEY, "private_key": DEMO_PRIVATE_KEY}
    del keys[missing]
    with pytest.raises(CredentialsError) as caught:
        lookup_images(region=REGION, base_url=emulator.base_url, **keys)
    assert str(caught.value).startswith(f"No UCloud {missing.replace('_', ' ')} was found; looked at the {missing} ")
    assert emulator.request_count == 0


# -- API and transport errors ---------------------------------------------------------------------------


def _api_error(settings: Settings, **changes: Any) -> APIError:
    with Client(settings.model_copy(update=changes), retry=NO_SLEEP) as client, pytest.raises(APIError) as caught:
        lookup_images(client=client)
    return caught.value


def test_a_wrong_private_key_is_retcode_171_with_message_action_and_request_id(
    settings: Settings, emulator: Emulator
) -> None:
    error = _api_error(settings, private_key=SecretStr("not-the-private-key"))
    request_id = emulator.requests[-1].request_id
    assert (error.ret_code, error.action, error.request_id) == (171, "DescribeImage", request_id)
    assert str(error) == (
        f"UCloud API DescribeImage failed with RetCode 171: Signature verification failed (request id {request_id}); "
        "check that the private key belongs to the public key."
    )
    assert exit_code_for(error) == 5
    assert emulator.request_count == 1  # never retried


def test_an_unknown_public_key_is_retcode_172(settings: Settings, emulator: Emulator) -> None:
    error = _api_error(settings, public_key="someone-else")
    assert error.ret_code == 172
    assert str(error) == (
        "UCloud API DescribeImage failed with RetCode 172: User not exist: public or private key invalid "
        f"(request id {emulator.requests[-1].request_id}); check the public and private keys."
    )
    assert emulator.request_count == 1


def test_an_unknown_region_is_retcode_230(settings: Settings, emulator: Emulator) -> None:
    error = _api_error(settings, region="mars-01")
    assert error.ret_code == 230
    assert "mars-01" in str(error) and str(error).endswith("; check the region and the filters.")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_base_url_is_a_transport_error_after_the_retries(settings: Settings) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    pauses: list[float] = []
    policy = RetryPolicy(attempts=3, sleep=pauses.append, jitter=lambda: 0.0)
    with Client(settings.model_copy(update={"base_url": url, "timeout": 2}), retry=policy) as client:
        with pytest.raises(TransportError) as caught:
            lookup_images(client=client)
        assert client.requests_sent == 3
    assert len(pauses) == 2
    message = str(caught.value)
    assert message.startswith(f"UCloud API DescribeImage at {url} could not be reached (connection refused).")
    assert "Gave up after 3 attempt(s)" in message
    assert exit_code_for(caught.value) == 5


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("malformed", "answered HTTP 200 with a body that is not JSON"),
        ("no_retcode", "answered HTTP 200 with JSON that has no RetCode"),
        ("bad_shape", "answered with an ImageSet that is not a list but a string"),
    ],
)
def test_a_server_answering_nonsense_is_a_response_format_error(
    client: Client, emulator: Emulator, kind: str, expected: str
) -> None:
    emulator.inject(kind, times=10)
    with pytest.raises(ResponseFormatError) as caught:
        lookup_images(client=client)
    request_id = emulator.requests[-1].request_id
    assert expected in str(caught.value)
    assert f"request id {request_id}" in str(caught.value)
    assert caught.value.request_id == request_id and exit_code_for(caught.value) == 5
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ([], "a body that is not a JSON object"),
        ({"TotalCount": 1, "ImageSet": {"ImageId": "uimage-a"}}, "an ImageSet that is not a list but an object"),
        ({"TotalCount": 1, "ImageSet": ["uimage-a"]}, "an ImageSet[0] that is not an object but a string"),
        ({"ImageSet": [{"ImageId": "uimage-a"}]}, "an ImageSet but no TotalCount"),
        ({"TotalCount": "2", "ImageSet": []}, "a TotalCount that is not a non-negative integer: '2'"),
        ({"TotalCount": -1}, "a TotalCount that is not a non-negative integer: -1"),
        ({"TotalCount": 1, "ImageSet": [{"ImageId": "a"}, {"ImageId": "b"}]},
         "2 images in ImageSet but a TotalCount of 1"),
        ({"TotalCount": 1, "ImageSet": [{"ImageName": "x"}]}, "an ImageSet[0] without ImageId"),
        ({"TotalCount": 1, "ImageSet": [{"ImageId": ""}]}, "an ImageSet[0] with an empty ImageId"),
        ({"TotalCount": 1, "ImageSet": [{"ImageId": "a", "Features": "GPU"}]},
         "an ImageSet[0].Features that is not an array: 'GPU'"),
        ({"TotalCount": 1, "ImageSet": [{"ImageId": "a", "CreateTime": "yesterday"}]},
         "an ImageSet[0].CreateTime that is not an integer: 'yesterday'"),
        ({"TotalCount": 1, "ImageSet": [{"ImageId": "a", "State": ["Available"]}]},
         "an ImageSet[0].State that is not a string: ['Available']"),
    ],
)
def test_every_malformed_page_is_named(body: Any, what: str) -> None:
    with pytest.raises(ResponseFormatError) as caught:
        parse_page(body, request_id="req-1")
    assert str(caught.value) == f"UCloud API DescribeImage answered with {what} (request id req-1)."


def test_a_page_tolerates_missing_and_null_fields() -> None:
    page = parse_page({"TotalCount": 3, "ImageSet": [
        {"ImageId": "a"}, {"ImageId": "b", "ImageName": None, "Features": None, "CreateTime": None},
    ]})
    assert page.total_count == 3
    assert [(image.image_id, image.image_name, image.features, image.create_time) for image in page.images] == [
        ("a", "", (), 0), ("b", "", (), 0),
    ]
    assert parse_page({"RetCode": 0}).images == ()


def test_a_transient_fault_is_retried_and_the_lookup_succeeds(client: Client, emulator: Emulator) -> None:
    emulator.inject("ret_code", value=153)
    emulator.inject("http_status", value=503)
    assert lookup_images(name_regex="^Windows", client=client).image_id == "uimage-w19"
    assert [request.fault for request in emulator.requests] == ["ret_code", "http_status", None]


def test_a_persistent_server_error_gives_up_with_the_status(client: Client, emulator: Emulator) -> None:
    emulator.inject("http_status", value=502, times=10)
    with pytest.raises(TransportError) as caught:
        lookup_images(client=client)
    assert "answered HTTP 502" in str(caught.value) and "Gave up after 3 attempt(s)" in str(caught.value)


# -- a big listing ---------------------------------------------------------------------------------------


def test_a_lookup_pages_through_more_than_a_thousand_images(capsys: pytest.CaptureFixture[str]) -> None:
    catalog = synthetic_catalog("cn-gd", 2500, zone="cn-gd-02")
    with Emulator(catalog, max_limit=100) as server:
        settings = Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region="cn-gd",
                            base_url=server.base_url)
        started = time.perf_counter()
        with Client(settings, retry=NO_SLEEP) as client:
            result = lookup_images(most_recent=True, client=client)
        elapsed = time.perf_counter() - started
        assert result.total_count == 2500
        assert result.image_id == max(catalog, key=lambda item: item["CreateTime"])["ImageId"]
        assert len(set(result.ids)) == 2500
        assert server.request_count == 25  # 100 per page, the cap, none wasted
    with capsys.disabled():
        print(f"\n[measure] lookup over 2,500 images in pages of 100: {elapsed * 1000:.0f} ms")


def test_descriptive_fields_of_an_odd_type_are_ignored_with_a_warning_not_a_failed_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = {"TotalCount": 1, "ImageSet": [{
        "ImageId": "uimage-odd", "ImageName": "CentOS 7.9 64位", "State": "Available", "MaintainEol": 0,
        "ImageSize": 20.5, "MinimalCPU": [], "PriceSet": [{"Price": "free"}],
    }]}
    with caplog.at_level(logging.WARNING, logger="pulumi_ucloud_images"):
        (image,) = parse_page(body).images
    assert (image.image_id, image.image_name, image.maintain_eol, image.image_size) == (
        "uimage-odd", "CentOS 7.9 64位", "0", 0
    )
    assert image.minimal_cpu == "" and image.price_set == ()
    assert "ImageSet[0] (uimage-odd): ignored ImageSize, MinimalCPU, PriceSet of an unexpected type" in caplog.text
