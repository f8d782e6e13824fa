"""The request signature, against UCloud's documented known answers and the official SDK as an oracle."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ucloud.core.auth import Credential
from ucloud.core.typesystem.encoder import encode

from pulumi_ucloud_images._api.signing import flatten, sign, signature

PUBLIC_KEY = "ucloudsomeone@example.com1296235120854146120"
PRIVATE_KEY = "46f09bb9fab4f12dfc160dae12273d5332b5debe"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"Action": "DescribeUHostInstance", "Region": "cn-bj2", "Limit": 10},
            "cba5cf5ec4d4233d206b1b54951e3787350a642f",
        ),
        (
            {
                "Action": "CreateUHostInstance",
                "CPU": 2,
                "ChargeType": "Month",
                "DiskSpace": 10,
                "ImageId": "f43736e1-65a5-4bea-ad2e-8a46e18883c2",
                "LoginMode": "Password",
                "Memory": 2048,
                "Name": "Host01",
                "Password": "VUNsb3VkLmNu",
                "Quantity": 1,
                "Region": "cn-bj2",
                "Zone": "cn-bj2-04",
            },
            "4f9ef5df2abab2c6fccd1e9515cb7e2df8c6bb65",
        ),
    ],
    ids=["DescribeUHostInstance", "CreateUHostInstance"],
)
def test_documented_known_answers(params: dict[str, Any], expected: str) -> None:
    signed = sign(params, PUBLIC_KEY, PRIVATE_KEY)
    assert signed["Signature"] == expected
    assert signed["PublicKey"] == PUBLIC_KEY


def test_flatten_writes_lists_booleans_and_whole_floats_as_the_api_expects() -> None:
    flat = flatten(
        {
            "ImageIds": ["uimage-a", "uimage-b"],
            "Disks": [{"Type": "CLOUD_SSD", "Size": 40.0, "IsBoot": True}],
            "Tag": {"Key": "env", "Value": "prod"},
            "PriceSet": 1,
            "Ratio": 0.5,
            "Enabled": False,
            "Zone": None,
        }
    )
    assert flat == {
        "ImageIds.0": "uimage-a",
        "ImageIds.1": "uimage-b",
        "Disks.0.Type": "CLOUD_SSD",
        "Disks.0.Size": "40",
        "Disks.0.IsBoot": "true",
        "Tag.Key": "env",
        "Tag.Value": "prod",
        "PriceSet": "1",
        "Ratio": "0.5",
        "Enabled": "false",
    }


def test_keys_sort_by_code_point_not_naturally() -> None:
    # "Key.10" < "Key.2" and "Z" < "a" in code-point order; a natural or case-folded sort would differ.
    flat = {f"Key.{index}": str(index) for index in range(12)} | {"a": "1", "Z": "2"}
    ordered = "".join(key + flat[key] for key in sorted(flat)) + PRIVATE_KEY
    assert sorted(flat).index("Key.10") < sorted(flat).index("Key.2")
    assert signature(flat, PRIVATE_KEY) == hashlib.sha1(ordered.encode()).hexdigest()


def test_an_existing_signature_is_not_signed() -> None:
    flat = {"Action": "DescribeImage", "Region": "cn-bj2"}
    assert signature({**flat, "Signature": "stale"}, PRIVATE_KEY) == signature(flat, PRIVATE_KEY)


def test_non_ascii_values_are_signed_as_utf8() -> None:
    flat = {"ImageName": "CentOS 7.9 64位"}
    expected = hashlib.sha1(("ImageNameCentOS 7.9 64位" + PRIVATE_KEY).encode("utf-8")).hexdigest()
    assert signature(flat, PRIVATE_KEY) == expected


# -- the official SDK as an oracle ------------------------------------------------------------------------

# Keys without "." so flattening cannot make two keys collide (the API never has such keys).
_keys = st.text(st.characters(exclude_characters=".", exclude_categories=["Cs"]), min_size=1, max_size=12)
_scalars = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.sampled_from([42.0, 0.0, -3.0, 0.5, 1e-5]),
    st.booleans(),
)
_objects = st.dictionaries(_keys, _scalars, max_size=3)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=12), st.lists(_objects, max_size=3), _objects)
_params = st.dictionaries(_keys.filter(lambda key: key not in ("Signature", "PublicKey")), _values, max_size=8)


@settings(max_examples=300, deadline=None)
@given(params=_params, private_key=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40))
def test_signature_agrees_with_the_official_sdk(params: dict[str, Any], private_key: str) -> None:
    ours = sign(params, PUBLIC_KEY, private_key)
    sdk_flat = encode(params)
    assert {key: value for key, value in ours.items() if key not in ("PublicKey", "Signature")} == sdk_flat
    assert ours["Signature"] == Credential(PUBLIC_KEY, private_key).verify_ac(dict(sdk_flat))
