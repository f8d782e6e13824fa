"""Lean image records: what selection reads of each listed image, with the full model built only when asked.

A listing of 30,000 images held as validated :class:`Image` models costs ~3.3 KiB and ~8 µs of parsing per
image; selection reads a dozen fields of each and returns a handful. So a page is read into
:class:`ImageRecord` objects by one pydantic-core validator: the fields selection and its messages read (ID,
name, zone, types, OS, state, time, features, vendor, EOL, GPU types, scene categories) checked strictly (a
string is a JSON string, a time a JSON integer, an ImageId an ID), and the other fields kept as they came,
unvalidated. A successful page is validated straight from its bytes, in one pass with the JSON parsing
(:func:`records_from_json`). :meth:`ImageRecord.full` validates the whole record into an :class:`Image` the
first time it is asked for (selection does so for the matches only).

A page the strict validator refuses (a ``null``, a number where a string belongs, an ImageId that is not an
ID, an envelope of the wrong shape) is read by :func:`parse_page` instead, so every error and every lenient
reading is the model's own.
"""

from __future__ import annotations

import typing
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any, NamedTuple

from pydantic_core import SchemaValidator, ValidationError, core_schema

from .._display import shown
from .._errors import ResponseFormatError
from .._query import SEARCHED
from .image import _IMAGE_ID, ARM64_FEATURE, Image, parse_eol, parse_page, validate_image

__all__ = ["ImageRecord", "RecordPage", "full_image", "parse_records", "records_from_json"]

_ARM64_KEY = ARM64_FEATURE.lower()
# (attribute, API key) of the fields kept checked: strings, then string lists, then CreateTime.
_TEXT: tuple[tuple[str, str], ...] = (
    ("image_id", "ImageId"), ("image_name", "ImageName"), ("zone", "Zone"), ("os_type", "OsType"),
    ("os_name", "OsName"), ("image_type", "ImageType"), ("func_type", "FuncType"), ("vendor", "Vendor"),
    ("state", "State"), ("maintain_eol", "MaintainEol"),
)
# Any other text a regex filter searches is kept too, so a new regex filter needs nothing here.
_SEARCHED_TOO = tuple(
    (name, str(Image.model_fields[name].alias)) for name in dict.fromkeys(SEARCHED.values())
    if name not in dict(_TEXT)
)
_TEXT += _SEARCHED_TOO
_LISTS = (("features", "Features"), ("supported_gpu_types", "SupportedGPUTypes"),
          ("scene_categories", "SceneCategories"))
_KEPT = frozenset(key for _, key in (*_TEXT, *_LISTS, ("create_time", "CreateTime")))
# (attribute, API key) of every other field of the model, kept raw for full().
_RAW = tuple(
    (f"_raw_{name}", str(info.alias)) for name, info in Image.model_fields.items()
    if info.alias is not None and info.alias not in _KEPT
)
_ABSENT: Any = object()
_UNSET: Any = object()


class ImageRecord:
    """One listed image as selection reads it; :meth:`full` is the validated :class:`Image`.

    Built by the page validator (which sets every slot, the private ones to their defaults) or by :meth:`of`.
    """

    __slots__ = (
        "_arch", "_eol", "_full", "create_time", "features", "func_type", "image_id", "image_name",
        "image_type", "maintain_eol", "os_name", "os_type", "scene_categories", "state", "supported_gpu_types",
        "vendor", "zone", *(name for name, _ in _SEARCHED_TOO), *(name for name, _ in _RAW),
    )

    image_id: str
    image_name: str
    zone: str
    os_type: str
    os_name: str
    image_type: str
    func_type: str
    vendor: str
    state: str
    maintain_eol: str
    create_time: int
    features: tuple[str, ...]
    supported_gpu_types: tuple[str, ...]
    scene_categories: tuple[str, ...]
    _arch: str | None
    _eol: Any
    _full: Image | None

    @classmethod
    def of(cls, image: Image) -> ImageRecord:
        """The record of a validated image (it is its own :meth:`full`)."""
        record = cls.__new__(cls)
        for name, _ in (*_TEXT, *_LISTS, ("create_time", "")):
            setattr(record, name, getattr(image, name))
        record._arch, record._eol, record._full = None, _UNSET, image
        return record

    @property
    def architecture(self) -> str:
        """``aarch64`` when the image carries the ``Aarch64_Type`` feature (any case), else ``x86_64``."""
        if self._arch is None:
            self._arch = "aarch64" if any(feature.lower() == _ARM64_KEY for feature in self.features) else "x86_64"
        return self._arch

    @property
    def eol_date(self) -> date | None:
        """``MaintainEol`` as a date, read as :attr:`Image.eol_date` reads it."""
        if self._eol is _UNSET:
            self._eol = parse_eol(self.maintain_eol, self.image_id)
        eol: date | None = self._eol
        return eol

    def past_eol(self, today: date) -> bool:
        eol = self.eol_date
        return eol is not None and eol < today

    def full(self) -> Image:
        """The whole record validated as an :class:`Image` (a descriptive field of an odd type is ignored and
        logged, as when a page is parsed). The record's fields never change, so two threads asking at once
        each build an equal model, and one of them is kept."""
        image = self._full
        if image is None:
            data: dict[str, Any] = {key: getattr(self, name) for name, key in (*_TEXT, *_LISTS)}
            data["CreateTime"] = self.create_time
            for name, key in _RAW:
                value = getattr(self, name)
                if value is not _ABSENT:
                    data[key] = value
            image = self._full = validate_image(data)
        return image

    def __repr__(self) -> str:
        return f"ImageRecord(image_id={self.image_id!r}, image_name={self.image_name!r})"


def full_image(image: Image) -> Image:
    """The :class:`Image` of a listed image, whether it came as a lean record or as a model."""
    return image.full() if isinstance(image, ImageRecord) else image


class RecordPage(NamedTuple):
    total_count: int
    images: tuple[ImageRecord, ...]


def _field(name: str, schema: core_schema.CoreSchema, default: Any, alias: str | None = None) -> Any:
    return core_schema.dataclass_field(
        name, core_schema.with_default_schema(schema, default=default), validation_alias=alias, init=alias is not None
    )


_STRING = core_schema.str_schema(strict=True)
# The ImageId rule of the model (``_IMAGE_ID``, printable ASCII without spaces, 1-128 characters), anchored.
_ID = core_schema.str_schema(strict=True, pattern=f"^{_IMAGE_ID.pattern}$")
# A raw field as it came; one the model reads as an array is kept as a tuple when it is one: an empty one is then
# the shared empty tuple, which the cyclic collector never tracks (as lists, a listing of 30,000 images left
# ~60,000 more objects for each collection to walk). The model reads a tuple as it reads the list. Only those
# fields try the tuple first: for a string, the failed try costs more than the whole field (0.5 µs an image).
_RAW_ARRAY = core_schema.union_schema(
    [core_schema.tuple_schema([core_schema.any_schema()], variadic_item_index=0), core_schema.any_schema()],
    mode="left_to_right",
)
_ARRAY_KEYS = frozenset(
    str(info.alias) for info in Image.model_fields.values() if typing.get_origin(info.annotation) is tuple
)
_RECORD = core_schema.dataclass_schema(
    ImageRecord,
    core_schema.dataclass_args_schema("ImageRecord", [
        *(_field(name, _ID if name == "image_id" else _STRING, "", key) for name, key in _TEXT),
        *(_field(name, core_schema.tuple_schema([_STRING], variadic_item_index=0), (), key) for name, key in _LISTS),
        _field("create_time", core_schema.int_schema(strict=True), 0, "CreateTime"),
        *(_field(name, _RAW_ARRAY if key in _ARRAY_KEYS else core_schema.any_schema(), _ABSENT, key)
          for name, key in _RAW),
        _field("_arch", core_schema.none_schema(), None),  # not read from the answer (init=False): defaults
        _field("_eol", core_schema.any_schema(), _UNSET),
        _field("_full", core_schema.none_schema(), None),
    ]),
    list(ImageRecord.__slots__),
    slots=True,
)
_RECORDS = SchemaValidator(core_schema.list_schema(_RECORD))
# A successful page (RetCode 0) whose every record passes: the usual answer, read in one pass.
_CLEAN_PAGE = SchemaValidator(core_schema.typed_dict_schema({
    "RetCode": core_schema.typed_dict_field(core_schema.int_schema(strict=True, ge=0, le=0)),
    "TotalCount": core_schema.typed_dict_field(core_schema.int_schema(strict=True, ge=0)),
    "ImageSet": core_schema.typed_dict_field(core_schema.list_schema(_RECORD)),
}))


def _fits(count: int, total: int, limit: int | None) -> bool:
    """A page holds no more images than its TotalCount and than the Limit it was asked for (``parse_page`` words
    the error otherwise)."""
    return count <= total and (limit is None or count <= limit)


def records_from_json(
    raw: bytes | bytearray, *, action: str = "DescribeImage", request_id: str = "", limit: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> RecordPage | None:
    """The page of a clean, successful answer, read straight from its bytes; ``None`` for any other answer
    (an error, an odd record, a page of the wrong size), which the general path (JSON, then
    :func:`parse_records`) then judges and words. With ``params``, the answer is checked against the question
    (:func:`check_answer`) as :func:`parse_records` checks it."""
    try:
        page = _CLEAN_PAGE.validate_json(raw)
    except ValidationError:
        return None
    images, total = page["ImageSet"], page["TotalCount"]
    if not _fits(len(images), total, limit):
        return None
    if params is not None:
        check_answer(images, params, action, request_id)
    return RecordPage(total, tuple(images))


def parse_records(
    body: Any, *, action: str = "DescribeImage", request_id: str = "", limit: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> RecordPage:
    """:func:`parse_page` into lean records: the same checks, the same errors, far less work per image.

    With ``params`` (the question asked), the answer is checked against it: see :func:`check_answer`.
    """
    page = _parse(body, action, request_id, limit)
    if params is not None:
        check_answer(page.images, params, action, request_id)
    return page


def _parse(body: Any, action: str, request_id: str, limit: int | None) -> RecordPage:
    if isinstance(body, Mapping):
        raw_images, total = body.get("ImageSet"), body.get("TotalCount")
        if type(raw_images) is list and type(total) is int and _fits(len(raw_images), total, limit):
            try:
                return RecordPage(total, tuple(_RECORDS.validate_python(raw_images)))
            except ValidationError:
                pass  # parse_page judges what the strict read refused
    page = parse_page(body, action=action, request_id=request_id, limit=limit)
    return RecordPage(page.total_count, tuple(ImageRecord.of(image) for image in page.images))


def _asked_ids(params: Mapping[str, Any]) -> Collection[str] | None:
    """The image IDs a DescribeImage question names (``ImageId``, ``ImageIds``), or ``None`` when it names none."""
    asked: set[str] = set()
    named = False
    for key, value in params.items():
        if key == "ImageId" or key == "ImageIds" or key.startswith("ImageIds."):
            values = value if isinstance(value, (list, tuple)) else [value]
            asked.update(str(item) for item in values if item is not None)
            named = named or any(item is not None for item in values)
    return asked if named else None


def check_answer(
    images: tuple[ImageRecord, ...], params: Mapping[str, Any], action: str, request_id: str
) -> None:
    """Refuse an answer that is not one to the question: an image whose zone is outside the region asked
    (a zone is the region plus ``-NN``; a record without a zone names none), or, for a question naming
    ``ImageId``/``ImageIds``, an image it did not name. A connection crossed with another's (a socket shared
    after ``fork``), a proxy's cache or a server's bug could otherwise hand back another question's image."""
    region = str(params.get("Region") or "")
    prefix = region + "-"
    asked = _asked_ids(params)

    def foreign(index: int, record: ImageRecord, what: str) -> ResponseFormatError:
        return ResponseFormatError(
            f"UCloud API {action} answered with ImageSet[{index}] ({shown(record.image_id, 40)!r}) {what} "
            f"(request id {request_id or 'unknown'}): the answer is not one to the question asked, so none of "
            "it is used.",
            action=action, request_id=request_id,
        )

    for index, record in enumerate(images):
        zone = record.zone
        if region and zone and zone != region and not zone.startswith(prefix):
            raise foreign(index, record, f"in zone {shown(zone, 40)!r}, outside the region asked, {region!r}")
        if asked is not None and record.image_id not in asked:
            raise foreign(index, record, "which the question did not name")
