"""The bundled catalogue: deterministic, realistic, valid, and holding the images other tests rely on."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest

from pulumi_ucloud_images._api.image import Image
from pulumi_ucloud_images._emulator.catalog import (
    DEFAULT_PROJECT,
    DEMO_REGION,
    KNOWN_REGIONS,
    PROJECTS,
    ZONES,
    build_catalog,
    region_of,
    synthetic_catalog,
)

API_KEYS = {
    "ImageId", "ImageName", "Zone", "OsType", "OsName", "ImageType", "Features", "FuncType", "State", "CreateTime",
    "ImageSize", "ImageDescription", "MaintainEol", "Tag", "Vendor", "MinimalCPU", "SupportedGPUTypes",
    "SceneCategories", "DataSnapshotIds", "IntegratedSoftware", "PrimarySoftware", "Links",
}
DOCUMENTED_FEATURES = {
    "NetEnhanced", "NetEnhanced_Ultra", "NetEnhanced_Extreme", "HotPlug", "GPU", "CloudInit", "IPv6",
    "RssdAttachable", "Vgpu_AMD", "Vgpu_NVIDIA", "Aarch64_Type",
}
SHORT_ID = re.compile(r"uimage-[a-z0-9]{6}")

CATALOG = build_catalog()
BY_ID = {record["ImageId"]: record for record in CATALOG}


def test_the_catalogue_is_deterministic_and_every_call_returns_a_fresh_copy() -> None:
    first, second = build_catalog(), build_catalog()
    assert first == second == CATALOG
    first[0]["Features"].append("Mutated")
    first[1]["ImageName"] = "mutated"
    assert build_catalog() == CATALOG


def test_size_regions_and_zones() -> None:
    assert len(CATALOG) >= 500
    regions = Counter(region_of(record) for record in CATALOG)
    assert {"cn-bj2", "cn-sh2", "hk", "us-ca"} <= set(regions)
    assert len(regions) >= 4 and all(count >= 10 for count in regions.values())
    zones = {record["Zone"] for record in CATALOG}
    assert len(zones) >= 8
    assert {"cn-bj2-02", "cn-bj2-03", "cn-bj2-05", "cn-sh2-01", "cn-sh2-02", "hk-02", "us-ca-01"} <= zones
    for record in CATALOG:
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*-\d\d", record["Zone"])
        assert record["Zone"] in ZONES[region_of(record)]
    assert set(ZONES) <= set(KNOWN_REGIONS)


def test_ids_are_unique_and_mostly_short() -> None:
    ids = [record["ImageId"] for record in CATALOG]
    assert len(ids) == len(set(ids))
    odd = [image_id for image_id in ids if not SHORT_ID.fullmatch(image_id)]
    assert 1 <= len(odd) <= 10  # a few old images carry the older, longer forms
    assert any(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", i) for i in odd)
    assert any(re.fullmatch(r"uimage-[a-z0-9]{7,}", i) for i in odd)


def test_every_record_has_the_api_fields_and_validates_as_an_image() -> None:
    for record in CATALOG:
        assert set(record) - {"_ProjectId"} == API_KEYS, record["ImageId"]
        image = Image.model_validate(record)
        assert image.image_id == record["ImageId"]
        assert image.to_api()["ImageName"] == record["ImageName"]
        assert set(record["Features"]) <= DOCUMENTED_FEATURES
        assert re.fullmatch(r"\d{4}/\d\d/\d\d", record["MaintainEol"])
        assert isinstance(record["CreateTime"], int) and record["CreateTime"] > 1_400_000_000
        assert record["ImageSize"] > 0


def test_types_os_states_and_func_types_are_all_represented() -> None:
    types = Counter(record["ImageType"] for record in CATALOG)
    assert set(types) == {"Base", "Business", "Custom"}
    assert types["Custom"] >= 200
    assert set(Counter(record["OsType"] for record in CATALOG)) == {"Linux", "Windows"}
    states = Counter(record["State"] for record in CATALOG)
    assert {"Available", "Making", "Unavailable"} <= set(states)
    assert states["Available"] > 0.85 * len(CATALOG)
    assert set(Counter(record["FuncType"] for record in CATALOG)) == {"gpu", "app", "uhost"}


def test_gpu_and_arm64_images() -> None:
    gpu = [record for record in CATALOG if record["FuncType"] == "gpu"]
    assert len(gpu) >= 10
    for record in gpu:
        assert "GPU" in record["Features"]
        assert record["SupportedGPUTypes"]
    arm = [record for record in CATALOG if "Aarch64_Type" in record["Features"]]
    assert len(arm) >= 5
    assert {region_of(record) for record in arm} >= {"cn-bj2", "cn-sh2"}
    # an arm64 twin shares its name and zone with an x86 image: only the feature tells them apart
    assert any(
        other["ImageName"] == record["ImageName"] and other["Zone"] == record["Zone"]
        and "Aarch64_Type" not in other["Features"]
        for record in arm for other in CATALOG
    )


def test_realistic_names_including_stray_spaces() -> None:
    names = {record["ImageName"] for record in CATALOG}
    for name in ("CentOS 7.9 64位", "Ubuntu 22.04 64位", "Ubuntu 20.04 64位", "Debian 11.7 64位", "Rocky 9.4 64位",
                 "RedHat 8.3 64位", "Windows 2019 64位", "高内核CentOS 7.6 64位"):
        assert name in names
    spaced = [name for name in names if name != name.strip()]
    assert 2 <= len(spaced) <= 6
    assert any(name.startswith(" ") for name in spaced) and any(name.endswith(" ") for name in spaced)


def test_the_real_example_image_is_unique_and_exact() -> None:
    matches = [record for record in CATALOG if record["ImageName"] == "CentOS 7.2 64位"]
    assert [record["ImageId"] for record in matches] == ["uimage-f1chxn"]
    record = matches[0]
    assert (record["OsType"], record["ImageType"], record["Zone"], record["ImageSize"]) == (
        "Linux", "Base", "cn-bj2-02", 20
    )
    assert sorted(record["Features"]) == ["HotPlug", "NetEnhanced"]
    assert record["CreateTime"] == int(datetime.fromisoformat("2019-04-16T21:05:03+08:00").timestamp())
    assert record["State"] == "Available"


def test_several_available_ubuntu_2204_in_the_demo_region() -> None:
    ubuntu = [
        record for record in CATALOG
        if region_of(record) == DEMO_REGION and record["ImageName"] == "Ubuntu 22.04 64位"
        and record["ImageType"] == "Base" and record["OsType"] == "Linux" and record["State"] == "Available"
        and "Aarch64_Type" not in record["Features"]
    ]
    assert {record["ImageId"] for record in ubuntu} == {"uimage-ub2202", "uimage-ub2203", "uimage-ub2204",
                                                         "uimage-ub2205"}
    assert len({record["Zone"] for record in ubuntu}) == 4
    assert len({record["CreateTime"] for record in ubuntu}) == 4
    # The newest Available Ubuntu 22.04 of every kind: the traps a careless most_recent falls into.
    def newest(keep: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return max(
            (r for r in CATALOG if region_of(r) == DEMO_REGION and r["ImageName"].startswith("Ubuntu 22.04")
             and r["State"] == "Available" and keep(r)),
            key=lambda r: r["CreateTime"],
        )

    x86_base = newest(lambda r: r["ImageType"] == "Base" and "Aarch64_Type" not in r["Features"])
    assert x86_base["ImageId"] == "uimage-ub2205"
    arm_base = newest(lambda r: r["ImageType"] == "Base" and "Aarch64_Type" in r["Features"])
    assert arm_base["ImageId"] == "uimage-ub22a6" and arm_base["CreateTime"] > x86_base["CreateTime"]
    assert arm_base["Zone"] == "cn-bj2-05"
    market = newest(lambda r: True)
    assert market["ImageId"] == "uimage-ub22wp" and market["ImageType"] == "Business"
    assert market["Vendor"] == "WPStack" and market["FuncType"] == "uhost"
    cuda = BY_ID["uimage-ub22cu"]
    assert (cuda["ImageType"], cuda["FuncType"], cuda["Zone"]) == ("Business", "gpu", "cn-bj2-05")
    assert set(cuda["SupportedGPUTypes"]) == {"A100", "H100", "4090"} and "AIModels" in cuda["SceneCategories"]
    assert cuda["CreateTime"] > x86_base["CreateTime"]
    assert BY_ID["uimage-ub22a5"]["Zone"] == "cn-bj2-05" and "Aarch64_Type" in BY_ID["uimage-ub22a5"]["Features"]
    assert BY_ID["uimage-ub22a5"]["CreateTime"] < x86_base["CreateTime"]
    assert BY_ID["uimage-ub22o1"]["State"] == "Unavailable"
    assert BY_ID["uimage-ub22mk"]["State"] == "Making"
    assert BY_ID["uimage-ub22mk"]["CreateTime"] > x86_base["CreateTime"]


def test_end_of_life_dates_and_the_images_past_them() -> None:
    images = [Image.model_validate(record) for record in CATALOG]
    assert all(image.eol_date is not None for image in images)  # every bundled MaintainEol is a date
    centos72 = BY_ID["uimage-f1chxn"]
    assert centos72["MaintainEol"] == "2024/06/30"
    today = date(2026, 12, 1)
    past = [image for image in images if image.past_eol(today)]
    assert "uimage-f1chxn" in {image.image_id for image in past}
    assert not any(image.past_eol(today) for image in images if image.image_name.startswith("Ubuntu 22.04"))
    # Every family of systems whose maintenance ended is represented, and most images are still maintained.
    ended = {image.os_name for image in past}
    assert {"CentOS 7.9 64位", "CentOS 8.3 64位", "Ubuntu 18.04 64位", "Ubuntu 20.04 64位"} <= ended
    assert 0 < len(past) < len(images) / 2


def test_golden_images_in_projects_with_many_versions() -> None:
    custom = [record for record in CATALOG if record["ImageType"] == "Custom"]
    assert all(record.get("_ProjectId") in PROJECTS for record in custom)
    assert all("_ProjectId" not in record for record in CATALOG if record["ImageType"] != "Custom")
    assert {record["_ProjectId"] for record in custom} == set(PROJECTS)
    families = Counter(
        (region_of(r), re.sub(r"-\d{4}\.\d\d\.\d\d$", "", r["ImageName"])) for r in custom
    )
    assert families[("cn-bj2", "golden-web")] >= 20 and families[("cn-bj2", "golden-db")] >= 10
    assert all(re.fullmatch(r"golden-[a-z0-9-]+-\d{4}\.\d\d\.\d\d", record["ImageName"]) for record in custom)
    assert BY_ID["uimage-gw0314"]["ImageName"] == "golden-web-2026.03.14"
    assert BY_ID["uimage-gw0307"]["ImageName"] == "golden-web-2026.03.07"
    assert BY_ID["uimage-gw0321"]["ImageName"] == "golden-web-2026.03.21"
    assert BY_ID["uimage-gw0321"]["State"] == "Making"
    web = [r for r in custom if region_of(r) == DEMO_REGION and r["ImageName"].startswith("golden-web-")
           and r["State"] == "Available"]
    assert max(web, key=lambda r: r["CreateTime"])["ImageId"] == "uimage-gw0314"
    assert all(r["_ProjectId"] == DEFAULT_PROJECT and r["Zone"] == "cn-bj2-02" for r in web)


def test_synthetic_catalogue_for_benchmarks() -> None:
    images = synthetic_catalog("cn-sh2", 5000)
    assert len(images) == 5000
    assert len({image["ImageId"] for image in images}) == 5000
    assert len({image["CreateTime"] for image in images}) == 5000
    assert {region_of(image) for image in images} == {"cn-sh2"}
    assert {image["Zone"] for image in images} == set(ZONES["cn-sh2"])
    assert {(i["State"], i["OsType"], i["ImageType"]) for i in images} == {("Available", "Linux", "Base")}
    for image in images[:50]:
        Image.model_validate(image)
    assert synthetic_catalog("cn-sh2", 100) == images[:100]
    assert synthetic_catalog("cn-sh2", 100, seed=1) != images[:100]
    assert {i["Zone"] for i in synthetic_catalog("cn-sh2", 10, zone="cn-sh2-02")} == {"cn-sh2-02"}
    assert {i["Zone"] for i in synthetic_catalog("mars-x", 3)} == {"mars-x-01"}
    assert synthetic_catalog("cn-bj2", 0) == []
    with pytest.raises(ValueError):
        synthetic_catalog("cn-bj2", -1)
