"""Spellings, in one place: Pulumi tokens, and each face's name for a model field.

A field has one name, the model's (``name_regex``, what Python callers write). Every other spelling is
derived from it here: camelCase for Pulumi's schema, the plugin and ``--output json`` (``nameRegex``),
PascalCase for schema type names (``SceneCategory``), the API's own spelling from the models' aliases
(``ImageId``), and the CLI's flags from the query fields' ``cli`` metadata (``--name-regex``). A
``Naming`` maps field names to one face's spelling; the core takes one wherever it words a message
(``select``, ``invalid_query_errors``, ``lookup_images``), so each face's messages are built in its own
spelling instead of being rewritten afterwards.

This module imports no model: the models import it (for their aliases), and callers hand the model in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel, to_pascal, to_snake

__all__ = [
    "GET_IMAGES_TOKEN",
    "PACKAGE_NAME",
    "PINNED_IMAGE_TOKEN",
    "Naming",
    "api_names",
    "camel",
    "camel_keys",
    "cli_flags",
    "field_keys",
    "pascal",
    "singular",
    "snake",
    "token",
    "wire_names",
]

Naming = Mapping[str, str]
"""Field name -> how one face spells it; a field left out is spelled as the model names it."""

PACKAGE_NAME = "ucloud-images"


def token(name: str) -> str:
    """``getImages`` -> ``ucloud-images:index:getImages``: a Pulumi token of this package's index module."""
    return f"{PACKAGE_NAME}:index:{name}"


GET_IMAGES_TOKEN = token("getImages")
PINNED_IMAGE_TOKEN = token("PinnedImage")


def camel(name: str) -> str:
    """``os_name_regex`` -> ``osNameRegex``: the schema's, the plugin's and the JSON output's spelling."""
    return to_camel(name)


def pascal(name: str) -> str:
    """``scene_category`` -> ``SceneCategory``: the spelling of a schema type's name."""
    return to_pascal(name)


def snake(name: str) -> str:
    """``latestImageId`` -> ``latest_image_id``: a camelCase property back to the field it spells."""
    return to_snake(name)


def singular(name: str) -> str:
    """``states`` -> ``state``, ``scene_categories`` -> ``scene_category``: the name of one list entry."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


def _names(model: type[BaseModel]) -> tuple[str, ...]:
    return (*model.model_fields, *model.model_computed_fields)


def wire_names(model: type[BaseModel]) -> dict[str, str]:
    """Field -> its camelCase property, derived fields included: the spelling of the schema and the plugin
    (and the serialization alias of the models that have one, :class:`ImageQuery`, :class:`LookupResult`)."""
    return {name: camel(name) for name in _names(model)}


def api_names(model: type[BaseModel], names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Field -> the API's spelling (the field's ``alias``, e.g. ``MinimalCPU``), for the fields named."""
    fields = model.model_fields
    return {name: str(fields[name].alias or pascal(name)) for name in (names or tuple(fields))}


def cli_flags(model: type[BaseModel]) -> dict[str, str]:
    """Field -> its command-line flag (``--name-regex``), from the ``cli`` entry of its schema metadata."""
    flags = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        flags[name] = str(extra.get("cli") or f"--{name.replace('_', '-')}")
    return flags


def camel_keys(value: Any) -> Any:
    """A dump (snake_case keys, as ``model_dump`` writes them) with every key in camelCase, at every depth."""
    if isinstance(value, Mapping):
        return {camel(str(key)): camel_keys(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [camel_keys(item) for item in value]
    return value


def field_keys(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """Keys in any of a field's spellings (``image_id``, ``imageId``, the API's ``ImageId``) -> the field names.

    Keys that spell no field are kept as given, so validation names them as the caller wrote them.
    """
    names = {name.replace("_", ""): name for name in _names(model)}
    return {names.get(str(key).replace("_", "").lower(), str(key)): value for key, value in data.items()}
