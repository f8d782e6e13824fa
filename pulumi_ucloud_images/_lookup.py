"""The plain-Python entry points: query -> settings -> signed, paged requests -> selection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._client import Client, shared_client
from ._errors import InvalidQueryError
from ._image import Image
from ._query import ImageQuery, parse_query
from ._select import LookupResult, filter_images, select
from ._settings import Settings, resolve_settings

__all__ = ["find_images", "lookup_images"]

_SETTING_NAMES = ("public_key", "private_key", "profile", "base_url", "timeout")


def _prepare(
    query: ImageQuery | Mapping[str, Any] | None,
    settings: Settings | None,
    client: Client | None,
    kwargs: dict[str, Any],
) -> tuple[ImageQuery, Client, str, tuple[Image, ...]]:
    setting_args = {name: kwargs.pop(name) for name in _SETTING_NAMES if name in kwargs}
    if isinstance(query, ImageQuery):
        query = parse_query(query.to_args(), **kwargs) if kwargs else query
    else:
        query = parse_query(query or {}, **kwargs)
    if client is not None:
        settings = client.settings
    elif settings is None:
        settings = resolve_settings(region=query.region, project_id=query.project_id, **setting_args)
    region = query.region or settings.region
    if region is None:
        raise InvalidQueryError("No UCloud region was given: pass region, or settings that have one.", field="region")
    client = client or shared_client(settings)
    images = client.describe_images(query.server_params(region, settings.project_id))
    return query, client, region, images


def lookup_images(
    query: ImageQuery | Mapping[str, Any] | None = None,
    /,
    *,
    settings: Settings | None = None,
    client: Client | None = None,
    **filters: Any,
) -> LookupResult:
    """Resolve a query to exactly one image, or raise.

    Filters are the :class:`ImageQuery` fields as keywords (or an ``ImageQuery``/mapping as the first
    argument); ``public_key``, ``private_key``, ``profile``, ``base_url`` and ``timeout`` override the
    settings. Raises :class:`NoImageFoundError` / :class:`AmbiguousImageError` on zero or several matches
    (unless ``most_recent``), :class:`InvalidQueryError` before any request on bad input.
    """
    parsed, _, region, images = _prepare(query, settings, client, dict(filters))
    return select(images, parsed, region)


def find_images(
    query: ImageQuery | Mapping[str, Any] | None = None,
    /,
    *,
    settings: Settings | None = None,
    client: Client | None = None,
    **filters: Any,
) -> list[Image]:
    """Every image that matches, newest first; no strictness (an empty list is a valid answer)."""
    parsed, _, _, images = _prepare(query, settings, client, dict(filters))
    return filter_images(images, parsed)
