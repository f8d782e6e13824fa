"""Selection: apply the client-side filters, order newest first, and refuse zero or ambiguous matches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import _query
from ._api.image import Image
from ._api.records import full_image
from ._display import shown as server_text
from ._errors import AmbiguousImageError, NoImageFoundError
from ._naming import camel
from ._query import ARCHITECTURES, ImageQuery

__all__ = [
    "LookupResult",
    "ambiguous_error",
    "architecture_error",
    "eol_warning",
    "filter_images",
    "newest_first",
    "no_match_error",
    "select",
]

_SHOWN_CANDIDATES = 10
_NAME_LIMIT = 80  # an image name is the server's text: shown without control characters, cut to this length


class LookupResult(BaseModel):
    """The chosen image and every match, newest first.

    Its aliases are the schema's camelCase (``imageId``, ``totalCount``): an invoke's answer validates by them.
    """

    model_config = ConfigDict(frozen=True, alias_generator=camel, populate_by_name=True)

    image_id: str = Field(min_length=1, description="The one image ID the query resolved to.")
    images: tuple[Image, ...] = Field(description="Every matching image, newest first.")
    ids: tuple[str, ...] = Field(description="The IDs of every matching image, newest first.")
    total_count: int = Field(ge=0, description="How many images matched.")
    region: str = Field(description="The region that was searched.")
    query: ImageQuery = Field(description="The query, as validated.")
    warnings: tuple[str, ...] = Field(
        default=(), description="Warnings about the chosen image, e.g. that it is past its end of life."
    )

    @property
    def image(self) -> Image:
        return next(image for image in self.images if image.image_id == self.image_id)

    def to_json(self) -> dict[str, Any]:
        """The result as ``find --output json`` prints it: camelCase keys throughout, as in ``schema.json``."""
        head = self.model_dump(by_alias=True, mode="json", include={"image_id", "ids", "total_count", "region"})
        return {
            **head,
            "image": self.image.to_json(),
            "images": [image.to_json() for image in self.images],
            "warnings": list(self.warnings),
        }


def _created(image: Image) -> str:
    if not image.create_time:
        return "unknown"
    return datetime.fromtimestamp(image.create_time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def newest_first(images: Iterable[Image]) -> list[Image]:
    """Newest ``CreateTime`` first; equal times ordered by ImageId so the order is deterministic."""
    return sorted(images, key=lambda image: (-image.create_time, image.image_id))


def filter_images(
    images: Iterable[Image], query: ImageQuery, naming: Mapping[str, str] | None = None, *, today: date | None = None
) -> list[Image]:
    """The images that pass every filter of ``query``, newest first (one bounded pass of regex matching).

    Marketplace images pass only when the query names them; ``today`` is the lookup's date for ``exclude_eol``.
    """
    matches = query.matcher(naming, today=today)
    return newest_first(full_image(image) for image in images if matches(image))


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _left_out(
    listed: Sequence[Image], query: ImageQuery, naming: Mapping[str, str], today: date | None
) -> list[str]:
    """What the query's safety rules left out, each with how to let it in: marketplace images, and images the
    EOL filters dropped (counted by relaxing that one rule)."""
    clauses = []
    if not query.names_marketplace:
        wider = query.model_copy(update={"include_marketplace": True}).matcher(naming, today=today)
        count = sum(1 for image in listed if wider(image))
        if count:
            clauses.append(
                f"{count} marketplace (Business) image{_plural(count, ' was', 's were')} left out: set "
                f"{naming.get('include_marketplace', 'include_marketplace')} (or name "
                f"{naming.get('image_type', 'image_type')} Business or a {naming.get('func_type', 'func_type')}) "
                f"to include {_plural(count, 'it', 'them')}"
            )
    if query.filters_eol:
        used = [naming.get(name, name) for name in ("exclude_eol", "supported_until") if getattr(query, name)]
        wider = query.model_copy(update={"exclude_eol": False, "supported_until": None}).matcher(naming, today=today)
        count = sum(1 for image in listed if wider(image))
        if count:
            clauses.append(
                f"{count} image{_plural(count, ' was', 's were')} dropped by the EOL "
                f"filter{_plural(len(used), '', 's')} {' and '.join(used)} (past or not known to reach the "
                f"end-of-life date asked for); leave {_plural(len(used), 'it', 'them')} out to include "
                f"{_plural(count, 'it', 'them')}"
            )
    return clauses


def no_match_error(
    listed: Sequence[Image],
    query: ImageQuery,
    region: str,
    naming: Mapping[str, str] | None = None,
    *,
    today: date | None = None,
    revoked: Sequence[Image] = (),
) -> NoImageFoundError:
    """Zero matches: name the region and every criterion, and say where the images were lost (other states,
    marketplace images, the EOL filters) and how to include them.

    ``naming`` spells the fields as the caller does (``--most-recent``, ``mostRecent``).
    """
    naming = naming or {}
    if not listed:
        where = "DescribeImage listed no image for the server-side filters"
    else:
        where = f"DescribeImage listed {len(listed)} image{'s' if len(listed) != 1 else ''}, none passing every filter"
        in_any_state = query.matcher(naming, any_state=True, today=today)
        elsewhere = Counter(
            server_text(image.state, 40) or "no state"
            for image in listed
            if image.state not in query.states and in_any_state(image)
        )
        if elsewhere:
            counts = [f"{count} {state}" for state, count in sorted(elsewhere.items())]
            plural = sum(elsewhere.values()) > 1
            where += (
                f", though {' and '.join(counts)} image{'s' if plural else ''} would pass"
                f" if {naming.get('states', 'states')} allowed {'them' if plural else 'it'}"
            )
        clauses = _left_out(listed, query, naming, today)
        if revoked:
            ids = ", ".join(image.image_id for image in revoked)
            clauses.append(
                f"{len(revoked)} revoked image{_plural(len(revoked), ' was', 's were')} left out ({ids}; "
                "'ucloud-images restore IMAGE_ID' lets one in again)"
            )
        if clauses:
            where += ("; " if elsewhere else ", though ") + "; ".join(clauses)
    return NoImageFoundError(f"No image in region {region} matches {query.criteria(naming)}: {where}.")


def ambiguous_error(
    matches: Sequence[Image], query: ImageQuery, region: str, naming: Mapping[str, str] | None = None
) -> AmbiguousImageError:
    """Several matches: list the first candidates, count the rest, and say how to decide."""
    naming = naming or {}
    shown = "; ".join(
        f"{image.image_id} {server_text(image.image_name, _NAME_LIMIT)!r} created {_created(image)}"
        for image in matches[:_SHOWN_CANDIDATES]
    )
    more = len(matches) - _SHOWN_CANDIDATES
    return AmbiguousImageError(
        f"{len(matches)} images in region {region} match {query.criteria(naming)}: {shown}"
        f"{f'; and {more} more' if more > 0 else ''}. "
        f"Set {naming.get('most_recent', 'most_recent')} to take the newest, or tighten the filters.",
        image_ids=[image.image_id for image in matches],
    )


def architecture_error(
    matches: Sequence[Image], query: ImageQuery, region: str, naming: Mapping[str, str] | None = None
) -> AmbiguousImageError:
    """``most_recent`` over candidates of both architectures: it never crosses them silently."""
    naming = naming or {}
    counts = Counter(image.architecture for image in matches)
    newest = [next(image for image in matches if image.architecture == arch) for arch in ARCHITECTURES]
    shown = "; ".join(
        f"the newest {image.architecture} one is {image.image_id} {server_text(image.image_name, _NAME_LIMIT)!r} "
        f"created {_created(image)}"
        for image in newest
    )
    architecture = naming.get("architecture", "architecture")
    return AmbiguousImageError(
        f"{len(matches)} images in region {region} match {query.criteria(naming)} on two architectures, "
        f"{counts['x86_64']} x86_64 and {counts['aarch64']} aarch64: {shown}. "
        f"{naming.get('most_recent', 'most_recent')} does not choose between architectures: set {architecture} "
        "to x86_64 or aarch64.",
        image_ids=[image.image_id for image in matches],
    )


def eol_warning(
    image: Image, query: ImageQuery, region: str, today: date, naming: Mapping[str, str] | None = None
) -> str | None:
    """The warning for a chosen image past its end of life (``None`` when it is not, or its EOL is unknown)."""
    if not image.past_eol(today) or image.eol_date is None:
        return None
    naming = naming or {}
    return (
        f"image {image.image_id} {server_text(image.image_name, _NAME_LIMIT)!r} in region {region} is past its end "
        f"of life ({image.eol_date:%Y/%m/%d}, before {today:%Y/%m/%d}); set "
        f"{naming.get('exclude_eol', 'exclude_eol')} to leave such images out, or "
        f"{naming.get('supported_until', 'supported_until')} to require support until a date"
    )


def select(
    images: Iterable[Image],
    query: ImageQuery,
    region: str,
    *,
    naming: Mapping[str, str] | None = None,
    today: date | None = None,
    revoked: frozenset[str] = frozenset(),
) -> LookupResult:
    """Apply the strict rules of the design: zero matches and unresolved ambiguity are errors.

    ``most_recent`` takes the newest match, but never across architectures (without ``architecture``,
    candidates on both are ambiguous). A chosen image past its end of life is kept, with a warning in
    ``warnings``. ``naming`` spells the fields in the errors as the caller does (CLI flags, Pulumi's camelCase);
    ``today`` is the lookup's date (default: today in UTC). Images whose IDs are ``revoked`` (in the
    lockfile) are left out as images in another state are, and a zero-match error counts them.
    """
    day = today or _query.utc_today()
    listed = tuple(images)
    matches = filter_images(listed, query, naming, today=day)
    if revoked:
        left_out = [image for image in matches if image.image_id in revoked]
        matches = [image for image in matches if image.image_id not in revoked]
        if not matches:
            raise no_match_error(listed, query, region, naming, today=day, revoked=left_out)
    if not matches:
        raise no_match_error(listed, query, region, naming, today=day)
    if len(matches) > 1 and not query.most_recent:
        raise ambiguous_error(matches, query, region, naming)
    if len(matches) > 1 and query.architecture is None and len({image.architecture for image in matches}) > 1:
        raise architecture_error(matches, query, region, naming)
    warning = eol_warning(matches[0], query, region, day, naming)
    return LookupResult(
        image_id=matches[0].image_id,
        images=tuple(matches),
        ids=tuple(image.image_id for image in matches),
        total_count=len(matches),
        region=region,
        query=query,
        warnings=() if warning is None else (warning,),
    )
