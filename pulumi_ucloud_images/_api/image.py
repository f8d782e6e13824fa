"""The image record (UHostImageSet) and the parser of one DescribeImage page.

The API may leave any field out or empty; the model is tolerant of that but strict about shape, so a
response of the wrong shape fails as :class:`ResponseFormatError` instead of surfacing half-parsed data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, computed_field

from .._display import shown
from .._errors import ResponseFormatError
from .._naming import api_names, camel_keys

__all__ = ["Image", "ImagePrice", "Page", "parse_eol", "parse_page"]

ARM64_FEATURE = "Aarch64_Type"
_ARM64_KEY = ARM64_FEATURE.lower()
_NUMBERS = frozenset({"CreateTime", "ImageSize", "create_time", "image_size"})
_log = logging.getLogger("pulumi_ucloud_images")
# MaintainEol as the API writes it, YYYY/MM/DD (a dash-separated date is read alike).
_EOL = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})")
# Every ImageId form the API uses (uimage-xxxxxx, 32 hex digits, UUIDs) is printable ASCII without spaces.
_IMAGE_ID = re.compile(r"[!-~]{1,128}")


def parse_eol(text: str, image_id: str = "") -> date | None:
    """``MaintainEol`` (``YYYY/MM/DD``) as a date; ``None`` when it is blank or malformed (logged, never raised)."""
    value = text.strip()
    if not value:
        _log.debug("image %s has no MaintainEol: its end of life is unknown", shown(image_id, 40) or "?")
        return None
    found = _EOL.fullmatch(value)
    if found is not None:
        try:
            return date(*(int(part) for part in found.groups()))
        except ValueError:
            pass
    _log.warning(
        "image %s has a MaintainEol that is not a YYYY/MM/DD date (%r): its end of life is unknown",
        shown(image_id, 40) or "?", shown(value, 40),
    )
    return None


class ImagePrice(BaseModel):
    """One entry of ``PriceSet`` (only present when prices were asked for)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    charge_type: str = Field(default="", alias="ChargeType")
    price: float | None = Field(default=None, alias="Price")
    original_price: float | None = Field(default=None, alias="OriginalPrice")


class Image(BaseModel):
    """One UHost image as DescribeImage describes it, with snake_case names."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore", coerce_numbers_to_str=True)

    # Strict: a number is not an ID (coerced, 1e2 would become "100.0" and 12345 "12345").
    image_id: str = Field(alias="ImageId", strict=True, description="The image ID, e.g. uimage-f1chxn.")
    image_name: str = Field(default="", alias="ImageName", description="The image name, as the API spells it.")
    zone: str = Field(default="", alias="Zone", description="The zone the image belongs to.")
    os_type: str = Field(default="", alias="OsType", description="Linux or Windows.")
    os_name: str = Field(default="", alias="OsName", description="The operating system name, e.g. CentOS 7.9 64位.")
    image_type: str = Field(default="", alias="ImageType", description="Base, Business or Custom.")
    features: tuple[str, ...] = Field(default=(), alias="Features", description="Image features, e.g. CloudInit.")
    func_type: str = Field(default="", alias="FuncType", description="gpu, app or uhost.")
    integrated_software: str = Field(default="", alias="IntegratedSoftware", description="Integrated software.")
    vendor: str = Field(default="", alias="Vendor", description="Vendor of a business image.")
    links: str = Field(default="", alias="Links", description="Link to the vendor's page.")
    state: str = Field(default="", alias="State", description="Available, Making, Unavailable or Copying.")
    image_description: str = Field(default="", alias="ImageDescription", description="Free-text description.")
    create_time: int = Field(default=0, alias="CreateTime", description="Creation time, unix seconds.")
    image_size: int = Field(default=0, alias="ImageSize", description="Image size in GB.")
    minimal_cpu: str = Field(default="", alias="MinimalCPU", description="Minimal CPU platform.")
    maintain_eol: str = Field(default="", alias="MaintainEol", description="End of maintenance, YYYY/MM/DD.")
    data_snapshot_ids: tuple[str, ...] = Field(default=(), alias="DataSnapshotIds", description="Data snapshots.")
    supported_gpu_types: tuple[str, ...] = Field(
        default=(), alias="SupportedGPUTypes", description="GPU types the image supports."
    )
    scene_categories: tuple[str, ...] = Field(default=(), alias="SceneCategories", description="Scene categories.")
    primary_software: str = Field(default="", alias="PrimarySoftware", description="Primary software.")
    tag: str = Field(default="", alias="Tag", description="Business group.")
    price_set: tuple[ImagePrice, ...] = Field(default=(), alias="PriceSet", description="Prices, when requested.")

    @computed_field(  # type: ignore[prop-decorator]
        description="x86_64, or aarch64 when the image carries the Aarch64_Type feature (derived)."
    )
    @cached_property
    def architecture(self) -> str:
        """``aarch64`` when the image carries the ``Aarch64_Type`` feature (any case, as features are matched),
        else ``x86_64``."""
        return "aarch64" if any(feature.lower() == _ARM64_KEY for feature in self.features) else "x86_64"

    @computed_field(  # type: ignore[prop-decorator]
        description="End of maintenance (MaintainEol) as a date, YYYY-MM-DD; null when blank or malformed (derived)."
    )
    @cached_property
    def eol_date(self) -> date | None:
        """``MaintainEol`` as a date, or ``None`` when it is blank or malformed (logged once per image)."""
        return parse_eol(self.maintain_eol, self.image_id)

    def past_eol(self, today: date) -> bool:
        """Whether the image's end of maintenance is before ``today`` (``False`` when it is unknown)."""
        eol = self.eol_date
        return eol is not None and eol < today

    def to_api(self) -> dict[str, Any]:
        """The record in the API's own PascalCase spelling (without the derived fields)."""
        return self.model_dump(by_alias=True, mode="json", exclude=_DERIVED)

    def to_json(self) -> dict[str, Any]:
        """The record as the command's JSON and the schema's ``Image`` type spell it: camelCase, derived fields
        (``architecture``, ``eolDate``) included."""
        return dict(camel_keys(self.model_dump(mode="json")))


_DERIVED = set(Image.model_computed_fields)
# The fields a query or the selection reads, in both spellings: these must be well-formed.
_SELECTED = frozenset(
    spelling
    for name, alias in api_names(Image, (
        "image_id", "image_name", "os_name", "state", "create_time", "features", "zone", "image_type", "os_type",
        "func_type",
    )).items()
    for spelling in (name, alias)
)


# What a field of the wrong type should have been, in JSON's words.
_EXPECTED = {
    "tuple_type": "is not an array",
    "list_type": "is not an array",
    "string_type": "is not a string",
    "int_type": "is not an integer",
    "int_parsing": "is not an integer",
    "int_from_float": "is not a whole number",
    "float_type": "is not a number",
    "float_parsing": "is not a number",
    "model_type": "is not an object",
}


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages about a response's shape."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", dict: "an object"}
    return "null" if value is None else names.get(type(value), "an array" if isinstance(value, list) else "a value")


_IMAGE_LIST = TypeAdapter(tuple[Image, ...])


def _without_absent(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None and not (value == "" and key in _NUMBERS)}


def _lenient(record: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The record without null fields and without descriptive fields of an unexpected type (logged).

    Fields that selection reads stay strict: a record whose ImageId, name, state, time or features are of
    the wrong shape fails the page, rather than a lookup choosing on a half-read record.
    """
    cleaned = _without_absent(record)
    try:
        Image.model_validate(cleaned)
    except ValidationError as exc:
        wrong = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        ignored = sorted(key for key in wrong if key in cleaned and key not in _SELECTED)
        if ignored:
            _log.warning(
                "DescribeImage ImageSet[%d] (%s): ignored %s of an unexpected type",
                index, shown(cleaned.get("ImageId", "no ImageId"), 40), ", ".join(ignored),
            )
            return {key: value for key, value in cleaned.items() if key not in ignored}
    return cleaned


def _validate_images(records: list[Any]) -> tuple[Image, ...]:
    """Validate a page of records in one pydantic-core pass.

    The API may send an absent field as null (and a number as ""): each means the default; and "any field
    may be missing or empty", so a descriptive field of an odd type is ignored rather than failing the page.
    Records are cleaned only when the fast pass fails, so a clean page (the usual one) never pays for Python
    code per record; pages carry up to thousands of them.
    """
    try:
        return _IMAGE_LIST.validate_python(records)
    except ValidationError:
        return _IMAGE_LIST.validate_python([_lenient(record, index) for index, record in enumerate(records)])


def validate_image(record: Mapping[str, Any]) -> Image:
    """One record, read as :func:`_validate_images` reads a page's (lenient with a descriptive field of an odd
    type); the model's own validator first, which is about half the cost of a one-record list."""
    try:
        return Image.model_validate(record)
    except ValidationError:
        return _validate_images([record])[0]


@dataclass(frozen=True)
class Page:
    total_count: int
    images: tuple[Image, ...]


def parse_page(body: Any, *, action: str = "DescribeImage", request_id: str = "", limit: int | None = None) -> Page:
    """Parse the payload of a successful DescribeImage answer (RetCode already checked).

    ``limit`` is the ``Limit`` the page was asked for: a page holding more images than that is refused before
    any record is validated.
    """

    def bad(what: str) -> ResponseFormatError:
        return ResponseFormatError(
            f"UCloud API {action} answered with {what} (request id {request_id or 'unknown'}).",
            action=action,
            request_id=request_id,
        )

    if not isinstance(body, Mapping):
        raise bad("a body that is not a JSON object")
    raw_images = body.get("ImageSet")
    if raw_images is None:
        raw_images = []
    if not isinstance(raw_images, list):
        raise bad(f"an ImageSet that is not a list but {_json_type(raw_images)}")
    if "TotalCount" not in body and raw_images:
        raise bad("an ImageSet but no TotalCount")
    total = body.get("TotalCount", 0)
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise bad(f"a TotalCount that is not a non-negative integer: {total!r:.60}")
    if len(raw_images) > total:
        raise bad(f"{len(raw_images)} images in ImageSet but a TotalCount of {total}")
    if limit is not None and len(raw_images) > limit:
        raise bad(f"{len(raw_images)} images in ImageSet for a Limit of {limit}")
    for index, raw in enumerate(raw_images):
        if not isinstance(raw, Mapping):
            raise bad(f"an ImageSet[{index}] that is not an object but {_json_type(raw)}")
    try:
        images = _validate_images(raw_images)
    except ValidationError as exc:
        first = exc.errors()[0]
        position, *field = first["loc"]
        where = ".".join(str(part) for part in field)
        if first["type"] == "missing":
            raise bad(f"an ImageSet[{position}] without {where}") from None
        expected = _EXPECTED.get(first["type"], first["msg"].lower())
        raise bad(f"an ImageSet[{position}].{where} that {expected}: {first['input']!r:.60}") from None
    for index, image in enumerate(images):
        if not image.image_id:
            raise bad(f"an ImageSet[{index}] with an empty ImageId")
        if not _IMAGE_ID.fullmatch(image.image_id):
            # An ID is printed alone on stdout for pipelines: it must be plain text a terminal cannot act on.
            raise bad(f"an ImageSet[{index}] whose ImageId is not an ID: {shown(image.image_id, 40)!r}")
    return Page(total_count=total, images=tuple(images))
