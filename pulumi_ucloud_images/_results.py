"""``GetImagesResult``: the result of ``get_images``, shaped like a generated Pulumi SDK's output type.

A view over the library's :class:`LookupResult` (it holds one), so the two can never disagree; the
properties carry the schema's wire names (``imageId``, ``totalCount``).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import pulumi

from ._image import Image
from ._query import ImageQuery
from ._select import LookupResult

__all__ = ["AwaitableGetImagesResult", "GetImagesResult"]


@pulumi.output_type
class GetImagesResult:
    """What :func:`get_images` returns: the chosen image, every match newest first, and the query as validated.

    A view over the library's :class:`LookupResult`, with the properties (and wire names) of a generated SDK.
    """

    def __init__(
        self,
        result: LookupResult | None = None,
        /,
        *,
        image_id: str | None = None,
        images: Sequence[Image] | None = None,
        ids: Sequence[str] | None = None,
        total_count: int | None = None,
        region: str | None = None,
        query: ImageQuery | None = None,
        warnings: Sequence[str] | None = None,
    ) -> None:
        """From a :class:`LookupResult`, or from its fields by keyword: Pulumi builds output types that way
        (``invoke(..., typ=GetImagesResult)``), and so may a test."""
        if result is None:
            result = LookupResult.model_validate({
                "image_id": image_id, "images": tuple(images or ()), "ids": tuple(ids or ()),
                "total_count": total_count, "region": region or "",
                "query": query if query is not None else ImageQuery(), "warnings": tuple(warnings or ()),
            })
        elif image_id is not None or images is not None or ids is not None or total_count is not None:
            raise TypeError("Pass a LookupResult or its fields, not both.")
        self._result = result

    @property
    @pulumi.getter(name="imageId")
    def image_id(self) -> str:
        """The one image ID the query resolved to."""
        return self._result.image_id

    @property
    @pulumi.getter
    def images(self) -> list[Image]:
        """Every matching image, newest first."""
        return list(self._result.images)

    @property
    @pulumi.getter
    def ids(self) -> list[str]:
        """The IDs of every matching image, newest first."""
        return list(self._result.ids)

    @property
    @pulumi.getter(name="totalCount")
    def total_count(self) -> int:
        """How many images matched."""
        return self._result.total_count

    @property
    @pulumi.getter
    def region(self) -> str | None:
        """The region that was searched (from the arguments or the settings); None when a mock named none."""
        return self._result.region or None

    @property
    @pulumi.getter
    def query(self) -> ImageQuery:
        """The query, as validated: enum values in the API's spelling, defaults filled in."""
        return self._result.query

    @property
    @pulumi.getter
    def warnings(self) -> list[str]:
        """Warnings about the chosen image, e.g. that it is past its end of life (also logged as warnings)."""
        return list(self._result.warnings)

    def __repr__(self) -> str:
        return (
            f"GetImagesResult(image_id={self.image_id!r}, total_count={self.total_count}, "
            f"region={self.region!r}, ids={self.ids!r})"
        )


class AwaitableGetImagesResult(GetImagesResult):
    """A :class:`GetImagesResult` that can also be awaited, as the results of generated SDK functions can."""

    def __await__(self) -> Generator[None, None, GetImagesResult]:
        yield from ()
        return GetImagesResult(self._result)
