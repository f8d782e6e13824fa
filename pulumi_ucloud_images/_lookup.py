"""The plain-Python entry points: query -> settings -> signed, paged requests -> selection."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from datetime import date
from typing import Any, NamedTuple, cast

from ._api.client import Client, shared_client
from ._api.image import Image
from ._errors import InvalidQueryError
from ._query import ImageQuery, parse_query
from ._select import LookupResult, filter_images, select
from ._settings.scope import lookup_scope, settings_for
from ._settings.settings import LOOKUP_ARGUMENTS, Settings, conceal_key_argument, resolve_region

__all__ = ["Listing", "fetch_listing", "find_images", "list_images", "lookup_images"]

_SOURCE_ARGUMENTS = (*LOOKUP_ARGUMENTS, "config")  # config: a face's config source (a Pulumi program's stack config)


class Listing(NamedTuple):
    """What DescribeImage listed for a query's server-side filters, before the client-side ones."""

    query: ImageQuery
    region: str
    images: tuple[Image, ...]


def fetch_listing(
    query: ImageQuery | Mapping[str, Any] | None = None,
    /,
    *,
    settings: Settings | None = None,
    client: Client | None = None,
    **filters: Any,
) -> Listing:
    """Validate the query, resolve the settings, and read every image its server-side filters list.

    Takes the same arguments as :func:`lookup_images`. Every input is checked before the first request.
    """
    conceal_key_argument(filters)  # from here on, no local holds the private key outside a SecretStr
    setting_args = {name: filters.pop(name) for name in _SOURCE_ARGUMENTS if name in filters}
    if isinstance(query, ImageQuery):
        query = parse_query(query.to_args(), **filters) if filters else query
    else:
        query = parse_query(query or {}, **filters)
    given = ["settings"] * (settings is not None) + list(setting_args)
    if client is not None:
        if given:
            raise TypeError(f"Pass a client or {', '.join(given)}, not both: a client brings its own settings.")
        settings = client.settings
    elif settings is None:
        settings = settings_for(query, **setting_args)
    elif setting_args:
        raise TypeError(f"Pass settings or {', '.join(setting_args)}, not both: settings are already resolved.")
    region, project_id = lookup_scope(query, settings)
    client = client or shared_client(settings)
    records = client.list_records(query.server_params(region, project_id))
    # Lean records read as an Image does for selection; filter_images builds full models of the matches only.
    return Listing(query, region, cast(tuple[Image, ...], records))


def lookup_images(
    query: ImageQuery | Mapping[str, Any] | None = None,
    /,
    *,
    settings: Settings | None = None,
    client: Client | None = None,
    naming: Mapping[str, str] | None = None,
    today: date | None = None,
    lock: str | None = None,
    lockfile: str | os.PathLike[str] | None = None,
    **filters: Any,
) -> LookupResult:
    """Resolve a query to exactly one image, or raise.

    Filters are the :class:`ImageQuery` fields as keywords (or an ``ImageQuery``/mapping as the first
    argument); ``public_key``, ``private_key``, ``profile``, ``base_url`` and ``timeout`` override the
    settings, and ``config`` is a config source read after them (a reader of ``ucloud:*`` keys, such as a
    Pulumi program's stack config: this function never reads one by itself). Raises
    :class:`NoImageFoundError` / :class:`AmbiguousImageError` on zero or several matches (unless
    ``most_recent``), :class:`InvalidQueryError` before any request on bad input. ``naming`` spells the
    fields in those errors as the caller does (e.g. ``{"most_recent": "--most-recent"}``). ``today`` is the date
    that end-of-life dates are compared with (default: today in UTC).

    ``lock="NAME"`` or ``"NAME@CHANNEL"`` reads that pin from the lockfile (``lockfile``, default: the nearest
    ``ucloud-images.lock.json`` upwards) instead, with no API call and no keys: ``region`` picks one of the pin's
    regions (default: its only one, else the configured region), other filters must be the locked query.
    A revoked image raises :class:`RevokedImageError`; a revocation to come or a deprecation is in ``warnings``.
    """
    conceal_key_argument(filters)  # before anything can fail: a traceback's locals must not show the key
    if lock is not None:
        return _locked(lock, lockfile, query, settings, client, filters)
    if lockfile is not None:
        raise InvalidQueryError("lockfile works only with lock=NAME[@CHANNEL]; pass lock, or leave it out.",
                                field="lockfile")
    listing = fetch_listing(query, settings=settings, client=client, **filters)
    return select(listing.images, listing.query, listing.region, naming=naming, today=today)


def _locked(
    lock: str, lockfile: str | os.PathLike[str] | None, query: ImageQuery | Mapping[str, Any] | None,
    settings: Settings | None, client: Client | None, filters: dict[str, Any],
) -> LookupResult:
    """``lookup_images(lock=...)``: the pin, offline; settings would do nothing, so they are refused."""
    from ._lockfile.pins import locked_lookup

    unused = ["settings"] * (settings is not None) + ["client"] * (client is not None)
    unused += [name for name in (*LOOKUP_ARGUMENTS, "config") if name in filters]
    if unused:
        raise InvalidQueryError(
            f"With lock no API call is made, so {', '.join(unused)} would do nothing; leave them out.",
            field=unused[0],
        )
    given = parse_query(query.to_args() if isinstance(query, ImageQuery) else query or {}, **filters)
    return locked_lookup(
        lock, None if given == ImageQuery() else given, path=lockfile, configured=lambda: resolve_region()
    )


def list_images(
    query: ImageQuery | Mapping[str, Any] | None = None,
    /,
    *,
    settings: Settings | None = None,
    client: Client | None = None,
    today: date | None = None,
    **filters: Any,
) -> list[Image]:
    """Every image that matches, newest first; no strictness (an empty list is a valid answer).

    The same rules decide what matches as for :func:`lookup_images`: marketplace images only when the query
    names them, the EOL filters compared with ``today`` (default: today in UTC).
    """
    conceal_key_argument(filters)
    listing = fetch_listing(query, settings=settings, client=client, **filters)
    return filter_images(listing.images, listing.query, today=today)


def find_images(*args: Any, **kwargs: Any) -> list[Image]:
    """Deprecated: :func:`list_images`, named like the command that lists (``ucloud-images list``)."""
    conceal_key_argument(kwargs)  # as list_images does: no frame of ours keeps the key in plain text
    warnings.warn("find_images is deprecated; use list_images, as 'ucloud-images list' is named.",
                  DeprecationWarning, stacklevel=2)
    return list_images(*args, **kwargs)
