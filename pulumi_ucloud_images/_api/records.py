"""Lean image records: what selection reads of each listed image, with the full model built only when asked.

A listing of 30,000 images held as validated :class:`Image` models costs ~3.3 KiB and ~8 µs of parsing per
image; selection reads a dozen fields of each and returns a handful. So a page is read into
:class:`ImageRecord` objects: the fields selection and its messages read (ID, name, zone, types, OS, state,
time, features, vendor, EOL, GPU types, scene categories) in slots, checked as strictly as the model checks
them, and the other fields kept as they came, unvalidated. :meth:`ImageRecord.full` validates the whole
record into an :class:`Image` the first time it is asked for (selection does so for the matches only).

A page whose selection fields are not all plain, well-typed values (a ``null``, a number where a string
belongs, an ImageId that is not an ID, an envelope of the wrong shape) is read by :func:`parse_page`
instead, so every error and every lenient reading is the model's own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from typing import Any, NamedTuple

from .._display import shown
from .._errors import ResponseFormatError
from .._query import SEARCHED
from .image import _IMAGE_ID, ARM64_FEATURE, Image, _validate_images, parse_eol, parse_page

__all__ = ["ImageRecord", "RecordPage", "full_image", "parse_records"]

_ARM64_KEY = ARM64_FEATURE.lower()
# (attribute, API key) of the fields kept in slots, checked: strings, then string lists, then CreateTime.
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
# Every other field of the model, kept raw in this order.
_REST = tuple(
    str(info.alias) for info in Image.model_fields.values() if info.alias is not None and info.alias not in _KEPT
)
_ABSENT: Any = object()
_DEFAULTS = (_ABSENT,) * len(_REST)
_UNSET: Any = object()
# An empty JSON list among the raw fields: kept as this marker, not as the decoded list, so a record's tuple of
# raw fields usually holds no container and the cyclic collector stops tracking it (a listing of 30,000
# images then leaves ~30,000 fewer tracked objects for each collection to walk).
_EMPTY_LIST: Any = object()


class ImageRecord:
    """One listed image as selection reads it; :meth:`full` is the validated :class:`Image`."""

    __slots__ = (
        "_arch", "_eol", "_full", "_rest", "create_time", "features", "func_type", "image_id", "image_name",
        "image_type", "maintain_eol", "os_name", "os_type", "scene_categories", "state", "supported_gpu_types",
        "vendor", "zone", *(name for name, _ in _SEARCHED_TOO),
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

    def __init__(self) -> None:
        self._arch: str | None = None
        self._eol: Any = _UNSET
        self._full: Image | None = None
        self._rest: tuple[Any, ...] = ()

    @classmethod
    def of(cls, image: Image) -> ImageRecord:
        """The record of a validated image (it is its own :meth:`full`)."""
        record = cls()
        for name, _ in (*_TEXT, *_LISTS, ("create_time", "")):
            setattr(record, name, getattr(image, name))
        record._full = image
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
            data.update(
                (key, [] if value is _EMPTY_LIST else value)
                for key, value in zip(_REST, self._rest, strict=True) if value is not _ABSENT
            )
            image = self._full = _validate_images([data])[0]
        return image

    def __repr__(self) -> str:
        return f"ImageRecord(image_id={self.image_id!r}, image_name={self.image_name!r})"


def full_image(image: Image) -> Image:
    """The :class:`Image` of a listed image, whether it came as a lean record or as a model."""
    return image.full() if isinstance(image, ImageRecord) else image


class RecordPage(NamedTuple):
    total_count: int
    images: tuple[ImageRecord, ...]


def _lean(raw: Any, shared: dict[tuple[str, ...], tuple[str, ...]]) -> ImageRecord | None:
    """The record of one clean ImageSet entry, or ``None`` when the model has to judge it. ``shared`` holds the
    page's distinct Features, GPU-type and scene tuples (they repeat across a page): a record adds no tuple of
    its own, neither in memory nor for the cyclic collector to walk."""
    if type(raw) is not dict:
        return None
    record = ImageRecord()
    get = raw.get
    for name, key in _TEXT:
        value = get(key, "")
        if type(value) is not str:
            return None
        setattr(record, name, value)
    for name, key in _LISTS:
        items = get(key, ())
        if type(items) is list:
            for item in items:
                if type(item) is not str:
                    return None
            if items:
                items = tuple(items)
                items = shared.setdefault(items, items)
            else:
                items = ()
        elif items != ():
            return None
        setattr(record, name, items)
    created = get("CreateTime", 0)
    if type(created) is not int:
        return None
    record.create_time = created
    if not _IMAGE_ID.fullmatch(record.image_id):
        return None
    record._rest = tuple([
        _EMPTY_LIST if type(value) is list and not value else value for value in map(get, _REST, _DEFAULTS)
    ])
    return record


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
        if (
            type(raw_images) is list and type(total) is int and len(raw_images) <= total
            and (limit is None or len(raw_images) <= limit)
        ):
            shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # this page's only
            records = [_lean(raw, shared) for raw in raw_images]
            if None not in records:
                return RecordPage(total, tuple(records))  # type: ignore[arg-type]
    page = parse_page(body, action=action, request_id=request_id, limit=limit)  # judges what the lean read did not
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
