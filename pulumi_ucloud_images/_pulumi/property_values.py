"""The plugin's wire format: the engine's property values <-> the plain values of the core and the pin service.

Keys are spelled by :mod:`~pulumi_ucloud_images._naming` (the schema's camelCase on the wire, field names inside);
numbers arrive
as floats and leave as what the user wrote; values not known yet travel as the engine's ``UNKNOWN`` sentinel;
secretness is kept per property. :func:`parse_arguments` turns getImages arguments into a validated query,
or into check failures worded in the plugin's spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.provider.experimental.property_value import Computed, PropertyValue
from pulumi.provider.experimental.provider import CheckFailure
from pydantic import ValidationError
from pydantic_core import InitErrorDetails

from .._errors import InvalidQueryError
from .._naming import camel, camel_keys, wire_names
from .._query import ImageQuery, invalid_query_errors
from .pin_service import LOCKED, OUTPUTS, QUERY, REPIN, RESOLVED, integral, is_unknown
from .sdk import UNKNOWN

__all__ = [
    "PLUGIN_NAMING", "has_secret", "parse_arguments", "pin_plain", "pin_wire", "plain", "property_name", "wire",
]

PLUGIN_NAMING = wire_names(ImageQuery)
"""How the plugin spells the query's fields, in its messages as in its properties: the schema's camelCase."""
_FIELD_BY_PROPERTY = {prop: name for name, prop in PLUGIN_NAMING.items()}
# A pin's properties: the query's, then its own (``repin``, ``query``, the outputs), as fields by property.
_PIN_FIELDS = _FIELD_BY_PROPERTY | {camel(name): name for name in (REPIN, QUERY, LOCKED, RESOLVED, *OUTPUTS)}


def plain(value: PropertyValue) -> Any:
    """A property value as plain Python (lists, dicts, str, float, bool, None); unknowns become ``UNKNOWN``,
    the engine's sentinel, as the dynamic provider's logic sees them."""
    inner = value.value
    if isinstance(inner, Computed):
        return UNKNOWN
    if isinstance(inner, (str, bool, float)) or inner is None:
        return inner
    if isinstance(inner, Mapping):
        return {key: plain(item) for key, item in inner.items()}
    if isinstance(inner, (tuple, list)):
        return [plain(item) for item in inner]
    return inner  # assets, archives, resource references: the model rejects them by type


def _value(value: Any, *, secret: bool = False) -> PropertyValue:
    """Plain JSON-like Python (keys already spelled for the engine) -> a property value; None entries left out."""
    if isinstance(value, dict):
        return PropertyValue(
            {key: _value(item, secret=secret) for key, item in value.items() if item is not None}, is_secret=secret
        )
    if isinstance(value, (list, tuple)):
        return PropertyValue([_value(item, secret=secret) for item in value], is_secret=secret)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return PropertyValue(value, is_secret=secret)
    if isinstance(value, (int, float)):
        return PropertyValue(float(value), is_secret=secret)
    raise TypeError(f"cannot send a {type(value).__name__} to the engine")


def wire(values: Mapping[str, Any], *, secret: bool) -> dict[str, PropertyValue]:
    """A plain answer (a dump: field names at every depth) -> the properties the engine gets (camelCase)."""
    answer = _value(camel_keys(values), secret=secret).value
    assert isinstance(answer, Mapping)
    return dict(answer)


def pin_wire(values: Mapping[str, Any], like: Mapping[str, PropertyValue]) -> dict[str, PropertyValue]:
    """A pin's plain properties -> the engine's, each secret only when the property of the same name in
    ``like`` holds a secret. The nested query's fields follow ``like``'s query, else the filters they echo."""
    wired: dict[str, PropertyValue] = {}
    for key, value in values.items():
        if value is None:
            continue
        name = camel(key)
        origin = like.get(name)
        if isinstance(value, Mapping):
            nested = origin.value if origin is not None and isinstance(origin.value, Mapping) else like
            wired[name] = PropertyValue(pin_wire(value, nested), is_secret=origin is not None and origin.is_secret)
        else:
            wired[name] = _value(value, secret=origin is not None and origin.contains_secret())
    return wired


def has_secret(values: Mapping[str, PropertyValue]) -> bool:
    return any(value.contains_secret() for value in values.values())


def pin_plain(props: Mapping[str, PropertyValue]) -> dict[str, Any]:
    """Engine properties -> what the pin service takes: field names, numbers as written, unknowns as the
    sentinel. A key that spells no property is kept as given, so the check names it as the user wrote it."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {_PIN_FIELDS.get(key, key): convert(item) for key, item in value.items()}
        return integral(value)

    return {_PIN_FIELDS.get(key, key): convert(plain(value)) for key, value in props.items()}


def parse_arguments(args: Mapping[str, PropertyValue]) -> tuple[ImageQuery | None, list[CheckFailure]]:
    """getImages arguments (camelCase) -> a validated query, or failures naming each bad property.

    Every problem is the core's sentence. Keys that are not properties are reported as unknown filters even
    when they spell a field another way (``name_regex``), so they cannot reach the model as that field.
    """
    data: dict[str, Any] = {}
    unknown_keys: dict[str, Any] = {}
    failures: list[CheckFailure] = []
    for key, value in args.items():
        given = integral(plain(value))
        field = _FIELD_BY_PROPERTY.get(key)
        if field is None:
            unknown_keys[key] = given
        elif is_unknown(given):
            failures.append(CheckFailure(key, f"{key} is not known yet; getImages needs known arguments."))
        elif given is not None:
            data[field] = given
    if unknown_keys:  # named as given, so a field's snake_case spelling is reported, not taken
        extra: list[InitErrorDetails] = [
            {"type": "extra_forbidden", "loc": (key,), "input": value} for key, value in unknown_keys.items()
        ]
        rejected = ValidationError.from_exception_data(ImageQuery.__name__, extra)
        failures += [CheckFailure(error.field or "", str(error)) for error in _sentences(rejected)]
    query = None
    try:
        query = ImageQuery.model_validate(data)
    except ValidationError as exc:
        failures += [CheckFailure(property_name(error.field), str(error)) for error in _sentences(exc)]
    return (None, failures) if failures else (query, [])


def _sentences(exc: ValidationError) -> list[InvalidQueryError]:
    """The core's one sentence per problem, naming the properties in the schema's spelling."""
    return invalid_query_errors(exc, naming=PLUGIN_NAMING)


def property_name(field: str | None) -> str:
    """A field as the plugin's properties spell it (``name_regex`` -> ``nameRegex``); others as they are."""
    return PLUGIN_NAMING.get(field or "", camel(field) if field else "")


