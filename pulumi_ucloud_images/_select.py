"""Selection: apply the client-side filters, order newest first, and refuse zero or ambiguous matches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._display import shown as server_text
from ._errors import AmbiguousImageError, NoImageFoundError
from ._image import Image
from ._lean import full_image
from ._query import ImageQuery

__all__ = ["LookupResult", "ambiguous_error", "filter_images", "newest_first", "no_match_error", "select"]

_SHOWN_CANDIDATES = 10
_NAME_LIMIT = 80  # an image name is the server's text: shown without control characters, cut to this length


class LookupResult(BaseModel):
    """The chosen image and every match, newest first."""

    model_config = ConfigDict(frozen=True)

    image_id: str = Field(description="The one image ID the query resolved to.")
    images: tuple[Image, ...] = Field(description="Every matching image, newest first.")
    ids: tuple[str, ...] = Field(description="The IDs of every matching image, newest first.")
    total_count: int = Field(description="How many images matched.")
    region: str = Field(description="The region that was searched.")
    query: ImageQuery = Field(description="The query, as validated.")

    @property
    def image(self) -> Image:
        return next(image for image in self.images if image.image_id == self.image_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "imageId": self.image_id,
            "ids": list(self.ids),
            "totalCount": self.total_count,
            "region": self.region,
            "image": self.image.to_api(),
            "images": [image.to_api() for image in self.images],
        }


def _created(image: Image) -> str:
    if not image.create_time:
        return "unknown"
    return datetime.fromtimestamp(image.create_time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def newest_first(images: Iterable[Image]) -> list[Image]:
    """Newest ``CreateTime`` first; equal times ordered by ImageId so the order is deterministic."""
    return sorted(images, key=lambda image: (-image.create_time, image.image_id))


def filter_images(images: Iterable[Image], query: ImageQuery, naming: Mapping[str, str] | None = None) -> list[Image]:
    """The images that pass every filter of ``query``, newest first (one bounded pass of regex matching)."""
    matches = query.matcher(naming)
    return newest_first(full_image(image) for image in images if matches(image))


def no_match_error(
    listed: Sequence[Image], query: ImageQuery, region: str, naming: Mapping[str, str] | None = None
) -> NoImageFoundError:
    """Zero matches: name the region and every criterion, and say where the images were lost.

    ``naming`` spells the fields as the caller does (``--most-recent``, ``mostRecent``).
    """
    naming = naming or {}
    if not listed:
        where = "DescribeImage listed no image for the server-side filters"
    else:
        where = f"DescribeImage listed {len(listed)} image{'s' if len(listed) != 1 else ''}, none passing every filter"
        in_any_state = query.matcher(naming, any_state=True)
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


def select(
    images: Iterable[Image], query: ImageQuery, region: str, *, naming: Mapping[str, str] | None = None
) -> LookupResult:
    """Apply the strict rules of the design: zero matches and unresolved ambiguity are errors.

    ``naming`` spells the fields in the errors as the caller does (CLI flags, Pulumi's camelCase).
    """
    listed = tuple(images)
    matches = filter_images(listed, query, naming)
    if not matches:
        raise no_match_error(listed, query, region, naming)
    if len(matches) > 1 and not query.most_recent:
        raise ambiguous_error(matches, query, region, naming)
    return LookupResult(
        image_id=matches[0].image_id,
        images=tuple(matches),
        ids=tuple(image.image_id for image in matches),
        total_count=len(matches),
        region=region,
        query=query,
    )
