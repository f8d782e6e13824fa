"""The Pulumi package schema, derived from the pydantic models so it cannot disagree with them.

Function inputs come from :class:`ImageQuery`, outputs from :class:`LookupResult`, object types from
:class:`Image` (and the models it nests), enum types from the query fields that declare ``enum`` values, and
provider config from the settings sources. Property names are the field names in camelCase; descriptions
are the fields' descriptions.

``scripts/codegen.py --write`` writes :func:`render` to ``schema.json`` at the repository root and to its copy in
the package, and CI checks both for drift; the provider plugin serves the package copy as it is, so it starts
without building the models.
"""

from __future__ import annotations

import json
import types
from datetime import date
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import ComputedFieldInfo, FieldInfo

from .._api.image import Image
from .._naming import GET_IMAGES_TOKEN, PACKAGE_NAME, PINNED_IMAGE_TOKEN, camel, pascal, singular, wire_names
from .._naming import token as token_of
from .._query import ImageQuery, field_extra
from .._select import LookupResult
from .._settings.settings import SETTINGS
from .._version import __version__

__all__ = [
    "CONFIG_KEYS",
    "GET_IMAGES_TOKEN",
    "IMAGE_TOKEN",
    "PACKAGE_NAME",
    "PINNED_IMAGE_TOKEN",
    "SERVED_SCHEMA_PATH",
    "build_schema",
    "render",
]

IMAGE_TOKEN = token_of(Image.__name__)
GO_IMPORT_BASE_PATH = "github.com/pulumi-ucloud-images/pulumi-ucloud-images/sdk/go/ucloudimages"
SERVED_SCHEMA_PATH = Path(__file__).with_name("schema.json")  # the package copy: the plugin serves it

_DESCRIPTION = (
    "Strict UCloud image lookups: one matching image ID or a clear error, never a silent first match."
)
_GET_IMAGES_DESCRIPTION = (
    "Find the one UCloud UHost image that matches every filter. Fails when nothing matches, and when several "
    "images match unless `mostRecent` is set; the result also lists every match, newest first."
)
# Provider settings: the settings' own table says which, how each is described, and which is secret.
_CONFIG_DESCRIPTIONS = {name: setting.summary for name, setting in SETTINGS.items() if setting.in_provider_config}
_PINNED_DESCRIPTION = (
    "An image ID resolved once and kept in state until the query or `repin` changes (then the pin is "
    "replaced). A refresh fails when the pinned image is gone or left the query's states, and records the "
    "newest current match as `latestImageId`, so drift shows without churn."
)
# PinnedImage properties that are not model fields.
_PINNED_EXTRA = {
    "repin": "Any new value re-pins: the query is resolved again on the next update.",
    "latest_image_id": "The newest image that matches the query now (as of the last create or refresh).",
    "query": "The query the pin was resolved with, as validated.",
    "eol_warning": "Set when the pinned image was past its end of life at the last create or refresh.",
}
# The inputs that read a pin from the lockfile instead of resolving a query (getImages and PinnedImage).
_LOCK_INPUTS = {
    "lock": {
        "type": "string",
        "description": "Read the image pinned for this selection (NAME, or NAME@CHANNEL for a channel) from the "
        "lockfile instead of searching, with no API call; `region` picks one of the pin's regions (else the "
        "configured region). A revoked image is an error; a revocation to come and a deprecation are warnings.",
    },
    "lockfile": {
        "type": "string",
        "description": "The lockfile for `lock`. Default: the nearest ucloud-images.lock.json upwards from the "
        "project directory.",
    },
}
# Type descriptions for schema readers; the model docstrings speak of the Python attributes.
_TYPE_DESCRIPTIONS = {
    "Image": "One UHost image, as DescribeImage describes it.",
    "ImagePrice": "One price of an image (present only when prices were requested).",
    "ImageQuery": "The query, as validated: enum values in the API's spelling, defaults filled in.",
}
_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", date: "string"}


CONFIG_KEYS: dict[str, str] = {name: SETTINGS[name].config_key for name in _CONFIG_DESCRIPTIONS}
"""Settings field -> provider config key (``private_key`` -> ``privateKey``), as in the ``ucloud:`` config."""


def _ref(token: str) -> dict[str, Any]:
    return {"$ref": f"#/types/{token}"}


class _Builder:
    """Collects the object and enum types that the function's inputs and outputs refer to."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}

    def type_spec(self, annotation: Any, enum_token: str | None = None) -> dict[str, Any]:
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):
            (inner,) = (arg for arg in get_args(annotation) if arg is not type(None))
            return self.type_spec(inner, enum_token)
        if origin in (tuple, list):
            return {"type": "array", "items": self.type_spec(get_args(annotation)[0], enum_token)}
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return _ref(self.object_type(annotation))
        if annotation in _PRIMITIVES:
            return _ref(enum_token) if enum_token else {"type": _PRIMITIVES[annotation]}
        raise TypeError(f"no Pulumi schema type for {annotation!r}")

    def property_spec(self, name: str, field: FieldInfo) -> dict[str, Any]:
        enum_token = self.enum_type(name, field)
        spec = self.type_spec(field.annotation, enum_token)
        if field.description:
            spec["description"] = field.description
        return spec

    def enum_type(self, name: str, field: FieldInfo) -> str | None:
        values = field_extra(field).get("enum")
        if not isinstance(values, list):
            return None
        is_list = get_origin(field.annotation) in (tuple, list)
        token = token_of(pascal(singular(name) if is_list else name))
        self.types[token] = {
            "description": f"Allowed values of `{camel(name)}`.",
            "type": "string",
            "enum": [{"value": value} for value in values],
        }
        return token

    def computed_spec(self, field: ComputedFieldInfo) -> dict[str, Any]:
        spec = self.type_spec(field.return_type)
        if field.description:
            spec["description"] = field.description
        return spec

    def object_type(self, model: type[BaseModel]) -> str:
        """An object type: the model's fields, then its computed (derived) fields, which its dumps carry too."""
        token = token_of(model.__name__)
        if token not in self.types:
            self.types[token] = {}  # reserve the name first: models may refer to each other
            spelled = wire_names(model)
            properties = {spelled[name]: self.property_spec(name, f) for name, f in model.model_fields.items()}
            properties |= {spelled[name]: self.computed_spec(f) for name, f in model.model_computed_fields.items()}
            required = [spelled[name] for name, f in model.model_fields.items() if _always_set(f)]
            required += [
                spelled[name] for name, f in model.model_computed_fields.items()
                if type(None) not in get_args(f.return_type)
            ]
            self.types[token] = {
                "description": _TYPE_DESCRIPTIONS.get(model.__name__) or _first_line(model.__doc__),
                "type": "object",
                "properties": properties,
                "required": required,
            }
        return token


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text and text.strip() else ""


def _always_set(field: FieldInfo) -> bool:
    """A field is always present in an output unless it may be None."""
    return type(None) not in get_args(field.annotation)


def _config_spec(name: str) -> dict[str, Any]:
    env = SETTINGS[name].variable
    then = "the profile marked active" if name == "profile" else "the UCloud CLI profile files"
    spec: dict[str, Any] = {
        "type": "number" if SETTINGS[name].python_type == "float" else "string",
        "description": f"{_CONFIG_DESCRIPTIONS[name]} When unset: the environment variable {env}, then {then}.",
    }
    if SETTINGS[name].secret:
        spec["secret"] = True
    return spec


def _pinned_image(builder: _Builder, inputs: dict[str, Any]) -> dict[str, Any]:
    """``PinnedImage``: the query's inputs plus ``repin``; out, the pinned image and the echoed inputs.

    As an input ``features`` is the filter; as an output it is the pinned image's own features.
    """
    from .pin_service import OUTPUTS, QUERY, REPIN

    repin = {"type": "string", "description": _PINNED_EXTRA[REPIN]}
    outputs: dict[str, Any] = {key: spec for key, spec in inputs.items() if key != "features"}
    outputs[camel(REPIN)] = repin
    outputs.update(_LOCK_INPUTS)
    outputs[camel(QUERY)] = {
        "$ref": f"#/types/{builder.object_type(ImageQuery)}",
        "description": _PINNED_EXTRA[QUERY],
    }
    for name in OUTPUTS:
        field = Image.model_fields.get(name)
        outputs[camel(name)] = (
            builder.property_spec(name, field) if field else {"type": "string", "description": _PINNED_EXTRA[name]}
        )
    return {
        "description": _PINNED_DESCRIPTION,
        "inputProperties": {**inputs, camel(REPIN): repin, **_LOCK_INPUTS},
        "properties": outputs,
        "required": [camel(name) for name in OUTPUTS if name in Image.model_fields] + [camel(QUERY)],
    }


def build_schema() -> dict[str, Any]:
    """The package schema as a dict, in a stable key order."""
    builder = _Builder()
    query_names, result_names = wire_names(ImageQuery), wire_names(LookupResult)
    inputs = {query_names[name]: builder.property_spec(name, field) for name, field in ImageQuery.model_fields.items()}
    outputs = {result_names[name]: builder.property_spec(name, f) for name, f in LookupResult.model_fields.items()}
    required_outputs = [result_names[name] for name, field in LookupResult.model_fields.items() if _always_set(field)]
    config = {CONFIG_KEYS[name]: _config_spec(name) for name in _CONFIG_DESCRIPTIONS}
    assert IMAGE_TOKEN in builder.types, "the result lists Image objects"
    return {
        "name": PACKAGE_NAME,
        "displayName": "UCloud Images",
        "version": __version__,
        "description": _DESCRIPTION,
        "keywords": ["pulumi", "ucloud", "uhost", "image", "category/cloud", "kind/native"],
        "license": "Apache-2.0",
        "config": {"variables": config},
        "provider": {
            "description": "Settings for UCloud image lookups; each falls back to the environment, then profile files.",
            "inputProperties": config,
        },
        "resources": {PINNED_IMAGE_TOKEN: _pinned_image(builder, inputs)},
        "types": dict(sorted(builder.types.items())),
        "functions": {
            GET_IMAGES_TOKEN: {
                "description": _GET_IMAGES_DESCRIPTION,
                "inputs": {"type": "object", "properties": {**inputs, **_LOCK_INPUTS}},
                "outputs": {"type": "object", "properties": outputs, "required": required_outputs},
            }
        },
        "language": {
            "python": {"packageName": "pulumi_ucloud_images"},
            "nodejs": {"packageName": "pulumi-ucloud-images"},
            # A Go SDK is generated where it is used (`pulumi package add`, or gen-sdk and a replace directive);
            # the path names the package, it is not a download location.
            "go": {"importBasePath": GO_IMPORT_BASE_PATH},
        },
    }


def render() -> str:
    """The exact text of ``schema.json``: two-space indent, UTF-8 (not escaped), a final newline."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"
