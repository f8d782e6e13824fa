"""Pins in use: reading one in a program and checking it still serves its query.

A program reads a pin with ``get_images(lock="NAME[@CHANNEL]")`` or ``PinnedImage(lock=...)``
(:func:`locked_lookup`, :func:`read_locked`) without calling the API, meeting the lockfile's revocations and
deprecations; :func:`fetch_pinned` asks the API whether a pinned image is still usable. Resolving a selection
file into pins is :mod:`~pulumi_ucloud_images._lockfile.resolver`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .. import _query
from .._api.client import Client, shared_client
from .._api.image import Image
from .._display import shown as server_text
from .._errors import LockfileError, NoImageFoundError, RevokedImageError
from .._query import ImageQuery, parse_query
from .._select import LookupResult, eol_warning
from .._settings.scope import lookup_scope
from .._settings.settings import resolve_settings
from .lockfile import DEFAULT_SELECTION_FILE, LATEST, Lockfile, Pin, find_lockfile, parse_lock_ref

__all__ = [
    "LockedRead",
    "Pin",
    "check_locked_query",
    "fetch_pinned",
    "locked_lookup",
    "read_locked",
    "require_usable",
]

_MAX_RESOLVERS = 8
_T = TypeVar("_T")
_K = TypeVar("_K")


# -- reading a pin from a program ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LockedRead:
    """A pin as a reader gets it: the pin, the lockfile it came from, its reference and the warnings of
    reading it (a revocation to come, a deprecation)."""

    pin: Pin
    path: Path
    ref: str
    warnings: tuple[str, ...] = ()


def read_locked(
    ref: str,
    path: str | os.PathLike[str] | None = None,
    region: str | None = None,
    *,
    configured: Callable[[], str | None] | None = None,
) -> LockedRead:
    """The pin ``ref`` (``NAME`` or ``NAME@CHANNEL``) names in ``region``, offline.

    ``region`` ``None``: the pin's one region, or with several the ``configured`` one (the settings'). An
    unknown name or channel, an empty channel and a region the pin does not cover are :class:`LockfileError`
    sentences saying what to run; an image revoked from a date that has come is :class:`RevokedImageError`.
    """
    name, channel = parse_lock_ref(ref)
    lock_path = find_lockfile() if path is None else Path(path)
    lockfile = Lockfile.load(lock_path)
    held = lockfile.channel(name, channel)
    if region is None and len(held) > 1 and configured is not None:
        region = configured()
    pin = lockfile.pin(name, channel, region)
    shown = name if channel == LATEST else f"{name}@{channel}"
    verdict = lockfile.verdict(pin.image_id, shown)
    if verdict.error is not None:
        raise RevokedImageError(verdict.error)
    return LockedRead(pin, lock_path, shown, verdict.warnings)


def check_locked_query(name: str, pin: Pin, query: ImageQuery, lock_path: Path) -> None:
    """The query in code must equal the locked one (``region`` only when the code gives one), else a
    :class:`LockfileError` names the differing fields."""
    differences = pin.differences(query, query.region)
    if differences:
        shown = ", ".join(
            f"{field} is {code!r} in code but {locked!r} in the lockfile" for field, code, locked in differences
        )
        raise LockfileError(
            f"The query for selection {name!r} differs from the lockfile {lock_path}: {shown}; make "
            f"{DEFAULT_SELECTION_FILE} and the code agree, then run 'ucloud-images lock --update "
            f"{name.partition('@')[0]}'."
        )


def locked_lookup(
    name: str,
    query: ImageQuery | None,
    *,
    path: str | os.PathLike[str] | None = None,
    verify: bool = False,
    settings_args: Mapping[str, Any] | None = None,
    configured: Callable[[], str | None] | None = None,
) -> LookupResult:
    """The image pinned for selection ``name``, read from the lockfile without any API call.

    With ``query`` ``None`` the pin is taken by its name alone, with the query it was locked with; a query
    given in code must equal the locked one (``region`` only when the code gives one), else
    :class:`LockfileError` names the differing fields. ``verify`` costs one DescribeImage call (ImageId
    filter, with ``settings_args`` as for :func:`resolve_settings`) and fails if the image is gone or not in
    one of the query's states; the image it finds past its end of life is kept, with a warning.
    ``path`` defaults to the nearest ``ucloud-images.lock.json`` upwards. ``name`` may name a channel
    (``web@prod``); a query that gives only a region picks the pin's region (else: :func:`read_locked`).
    """
    if query is not None and query == ImageQuery(region=query.region):
        region, query = query.region, None
    else:
        region = None if query is None else query.region
    read = read_locked(name, path, region, configured=configured)
    pin, lock_path = read.pin, read.path
    if query is None:
        query = pin.query
    else:
        check_locked_query(name, pin, query, lock_path)
    image = pin.image()
    warnings: tuple[str, ...] = read.warnings
    if verify:
        settings = resolve_settings(**{**(settings_args or {}), "region": pin.region})
        image = require_usable(fetch_pinned(pin.image_id, pin.region, query, shared_client(settings)), name, lock_path)
        warning = eol_warning(image, query, pin.region, _query.utc_today())
        if warning is not None:
            warnings += (f"selection {name!r} of {lock_path} pins {warning}",)
    return LookupResult(
        image_id=image.image_id, images=(image,), ids=(image.image_id,), total_count=1, region=pin.region,
        query=query, warnings=warnings,
    )


def fetch_pinned(image_id: str, region: str, query: ImageQuery, client: Client) -> Image | str:
    """The pinned image as the API sees it now, or why it can no longer serve ``query``.

    One DescribeImage call filtered by the image's ID (in the query's project). The reason, a clause to
    embed in a sentence, is that the image is gone or not in one of the query's states.
    """
    params = parse_query(image_id=image_id).server_params(
        *lookup_scope(query.model_copy(update={"region": region}), client.settings)
    )
    image = next((image for image in client.describe_images(params) if image.image_id == image_id), None)
    if image is None:
        return f"the pinned image {image_id} no longer exists in region {region}"
    if image.state not in query.states:
        state = server_text(image.state, 40) or "in no state"  # the server's text
        return f"the pinned image {image_id} is {state} in region {region}, not {' or '.join(query.states)}"
    return image


def require_usable(found: Image | str, name: str, lock_path: Path) -> Image:
    """The image :func:`fetch_pinned` found, or the :class:`NoImageFoundError` that says how to re-pin it."""
    if isinstance(found, str):
        raise NoImageFoundError(
            f"For selection {name!r} of {lock_path}, {found}; re-pin it with 'ucloud-images lock --update {name}'."
        )
    return found
