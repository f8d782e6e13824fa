"""UCloud's request signature: flatten, sort by code point, concatenate, append the private key, SHA-1."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

__all__ = ["flatten", "sign", "signature"]


def _encode_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def flatten(params: Mapping[str, Any]) -> dict[str, str]:
    """Flatten nested parameters the way the API expects them on the wire.

    Lists become ``Key.0``, ``Key.1``; mappings (alone or inside lists) become ``Key.Sub`` / ``Key.0.Sub``.
    ``None`` values are left out, so optional parameters can be passed through unfiltered.
    """
    flat: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            for sub_key, sub_value in flatten(value).items():
                flat[f"{key}.{sub_key}"] = sub_value
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    for sub_key, sub_value in flatten(item).items():
                        flat[f"{key}.{index}.{sub_key}"] = sub_value
                elif item is not None:
                    flat[f"{key}.{index}"] = _encode_value(item)
        else:
            flat[key] = _encode_value(value)
    return flat


def signature(flat_params: Mapping[str, str], private_key: str | SecretStr) -> str:
    """Lower-case hex SHA-1 of every ``key + value`` in code-point key order, then the private key.

    Pass the key as a ``SecretStr`` and it is revealed only inside the hash update, never bound to a name.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    for key in sorted(flat_params):
        if key == "Signature":
            continue
        digest.update(key.encode("utf-8"))
        digest.update(flat_params[key].encode("utf-8"))
    digest.update((private_key.get_secret_value() if isinstance(private_key, SecretStr) else private_key).encode())
    return digest.hexdigest()


def sign(params: Mapping[str, Any], public_key: str, private_key: str | SecretStr) -> dict[str, str]:
    """Return the flattened parameters with ``PublicKey`` and ``Signature`` added."""
    flat = flatten(params)
    flat["PublicKey"] = public_key
    flat["Signature"] = signature(flat, private_key)
    return flat
