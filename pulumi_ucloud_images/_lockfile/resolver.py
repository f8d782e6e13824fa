"""Resolving a selection file into pins, one per selection and region, and comparing them with the lockfile's.

``ucloud-images lock`` resolves every place (a selection in one of its regions) concurrently through one client
(:func:`resolve_pins`), never pinning a revoked image, and compares the result with the lockfile
(:func:`changes`, :func:`stale`). Reading a pin in a program is :mod:`~pulumi_ucloud_images._lockfile.pins`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from .._api.client import Client
from .._api.image import Image
from .._display import shown as server_text
from .._errors import LockfileError, NoImageFoundError, UCloudImagesError
from .._lookup import fetch_listing
from .._query import ImageQuery
from .._select import select
from .._settings.scope import lookup_scope, region_of
from .lockfile import LATEST, LockedImage, Lockfile, Pin, utc_iso
from .pins import fetch_pinned
from .selections import SelectionFile

__all__ = [
    "Change",
    "Place",
    "changes",
    "in_parallel",
    "keep_unchanged",
    "label",
    "latest_pins",
    "pinned_images",
    "places_of",
    "query_note",
    "resolve_pins",
    "selection_regions",
    "stale",
    "verified_images",
]

_MAX_RESOLVERS = 8
_T = TypeVar("_T")
_K = TypeVar("_K")


# -- resolving a selection file -----------------------------------------------------------------------------

# A selection's pin in one region: (selection name, region).
Place = tuple[str, str]


def selection_regions(declared: SelectionFile, configured: str | None) -> dict[str, tuple[str, ...]]:
    """The regions each selection resolves in: those it declares, else its query's, else the configured one
    (a missing one is said first)."""
    regions: dict[str, tuple[str, ...]] = {}
    for name, query in declared.queries.items():
        region = region_of(query, configured)
        if declared.regions(name):
            regions[name] = declared.regions(name)
        elif region is None:
            raise LockfileError(
                f"Selection {name!r} of {declared.path} has no region; set region in it or in [settings], "
                "or set UCLOUD_REGION or the region of the ~/.ucloud profile (--profile)."
            )
        else:
            regions[name] = (region,)
    return regions


def places_of(names: Iterable[str], regions: Mapping[str, Sequence[str]]) -> list[Place]:
    return [(name, region) for name in names for region in regions[name]]


def label(place: Place, declared: SelectionFile) -> str:
    """``web``, or ``web [cn-sh2]`` for a selection that declares several regions."""
    name, region = place
    return f"{name} [{region}]" if declared.regions(name) else name


def in_parallel(keys: Iterable[_K], work: Callable[[_K], _T], declared: SelectionFile) -> dict[_K, _T]:
    """Run ``work(key)`` for every key on a small pool; the first failure (in order) is raised, naming the
    selection (a key is a selection name or a :data:`Place`)."""
    keys = list(keys)
    if not keys:
        return {}
    with ThreadPoolExecutor(min(len(keys), _MAX_RESOLVERS), thread_name_prefix="ucloud-images-lock") as pool:
        futures = {key: pool.submit(work, key) for key in keys}
    results: dict[_K, _T] = {}
    for key, future in futures.items():
        try:
            results[key] = future.result()
        except UCloudImagesError as exc:
            name = key[0] if isinstance(key, tuple) else key
            exc.args = (f"Selection {name!r} of {declared.path}: {exc}",)
            raise
    return results


def _place_query(declared: SelectionFile, place: Place) -> ImageQuery:
    """The query a place resolves: the selection's, in the place's region when it declares several."""
    name, region = place
    query = declared.queries[name]
    return query.model_copy(update={"region": region}) if declared.regions(name) else query


def resolve_pins(
    places: Iterable[Place], declared: SelectionFile, client: Client, revoked: frozenset[str] = frozenset()
) -> dict[Place, Pin]:
    """Resolve every place concurrently through one client, so places that list the same pages share them.

    ``revoked`` images are never pinned. A selection that matches nothing in some of its regions fails with
    one :class:`NoImageFoundError` naming every such region, and where a same-named image is still Copying.
    """
    locked_at = utc_iso(int(datetime.now(timezone.utc).timestamp()))
    places = list(places)

    def resolve(place: Place) -> Pin | NoImageFoundError:
        query = _place_query(declared, place)
        listing = fetch_listing(query, client=client)
        try:
            result = select(listing.images, listing.query, listing.region, revoked=revoked)
        except NoImageFoundError as exc:
            if not declared.regions(place[0]):
                raise
            return exc
        return Pin.holding(LockedImage.of_image(result.image, locked_at), declared.queries[place[0]], place[1])

    found = in_parallel(places, resolve, declared)
    failed: dict[str, list[Place]] = {}
    for place, answer in found.items():
        if isinstance(answer, NoImageFoundError):
            failed.setdefault(place[0], []).append(place)
    if failed:
        name, missing = next(iter(failed.items()))
        raise _regions_lacking(name, missing, found, declared, client)
    return {place: answer for place, answer in found.items() if isinstance(answer, Pin)}


def _regions_lacking(
    name: str, missing: list[Place], found: Mapping[Place, Pin | NoImageFoundError], declared: SelectionFile,
    client: Client,
) -> NoImageFoundError:
    """One error for a multi-region selection that matched nothing in some regions: every such region, and
    where an image named as the one found elsewhere is still ``Copying`` (CopyCustomImage has not finished)."""
    names = {answer.image_name for (other, _), answer in found.items() if other == name and isinstance(answer, Pin)}
    regions = [region for _, region in missing]
    copying: list[str] = []
    for place in missing:
        listing = fetch_listing(_place_query(declared, place), client=client)  # memoised: no request
        for image in listing.images:
            if image.state == "Copying" and (image.image_name in names or not names):
                copying.append(
                    f"{server_text(image.image_id, 80)} {server_text(image.image_name.strip(), 80)!r} is still "
                    f"Copying in {place[1]}"
                )
    reasons = "; ".join(f"in {region}: {_clause(str(found[(name, region)]))}" for region in regions)
    wait = (
        f" ({'; '.join(copying)}: wait until it is Available, then run 'ucloud-images lock --update {name}')"
        if copying else ""
    )
    return NoImageFoundError(
        f"Selection {name!r} of {declared.path} has no image in region{'s' if len(regions) > 1 else ''} "
        f"{', '.join(regions)}{wait}; {reasons}"
    )


def _clause(sentence: str) -> str:
    sentence = sentence.rstrip(".")
    return sentence[:1].lower() + sentence[1:]


def _pinned_image(pin: Pin, query: ImageQuery, client: Client) -> Image | str:
    """The image a pin names as the API describes it now: from the selection's listing, which the lookup has
    just read (memoised, so no request), else by its ID (one request); or why it is gone."""
    params = query.server_params(*lookup_scope(query.model_copy(update={"region": pin.region}), client.settings))
    found = next((image for image in client.describe_images(params) if image.image_id == pin.image_id), None)
    return found if found is not None else fetch_pinned(pin.image_id, pin.region, query, client)


def pinned_images(pins: Mapping[Place, Pin], declared: SelectionFile, client: Client) -> dict[Place, Image | str]:
    """The image of every pin of a selection of the file, as the API describes it now (or why it is gone)."""
    places = [place for place in pins if place[0] in declared.queries]
    return in_parallel(places, lambda place: _pinned_image(pins[place], declared.queries[place[0]], client), declared)


def verified_images(pins: Mapping[Place, Pin], declared: SelectionFile, client: Client) -> dict[Place, Image | str]:
    """Like :func:`pinned_images`, but by ID alone (one request per pin), without listing the selection."""
    places = [place for place in pins if place[0] in declared.queries]
    return in_parallel(
        places,
        lambda place: fetch_pinned(pins[place].image_id, pins[place].region, declared.queries[place[0]], client),
        declared,
    )


# -- comparing pins -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A place whose pin differs: added (``old`` None), removed (``new`` None) or moved. ``name`` is the
    place as people read it (:func:`label`)."""

    name: str
    old: Pin | None
    new: Pin | None
    note: str = ""

    def line(self, selection_file: Path) -> str:
        if self.old is None and self.new is not None:
            return f"  + {self.name}: {self.new.describe()} (not in the lockfile yet)"
        if self.new is None and self.old is not None:
            return f"  - {self.name}: {self.old.describe()} (no longer in {selection_file})"
        assert self.old is not None and self.new is not None
        note = f" ({self.note})" if self.note else ""
        if self.old.image_id == self.new.image_id:
            return f"  ~ {self.name}: {self.old.image_id} unchanged{note}"
        return f"  ~ {self.name}: {self.old.describe()} -> {self.new.describe()}{note}"


def query_note(old: Pin, query: ImageQuery, region: str) -> str:
    """``query changed in the selection file: zone``, or nothing when ``old`` answers the query."""
    fields = [field for field, _, _ in old.differences(query, region)]
    if query.region != old.query.region and "region" not in fields:
        fields.insert(0, "region")
    return f"query changed in the selection file: {', '.join(fields)}" if fields else ""


def changes(old: Mapping[Place, Pin], new: Mapping[Place, Pin], declared: SelectionFile) -> list[Change]:
    """Every place whose pin differs between ``old`` and ``new``, in ``new``'s order, then removed ones."""
    found: list[Change] = []
    for place, pin in new.items():
        before = old.get(place)
        if before is None:
            found.append(Change(label(place, declared), None, pin))
        elif not before.same_as(pin):
            found.append(Change(label(place, declared), before, pin, query_note(before, pin.query, pin.region)))
    found.extend(Change(label(place, declared), pin, None) for place, pin in old.items() if place not in new)
    return found


def keep_unchanged(old: Mapping[Place, Pin], new: Mapping[Place, Pin]) -> dict[Place, Pin]:
    """A re-resolved pin that matches the old one keeps the old entry, so its ``locked_at`` does not churn.

    An old entry that lacks what enforcement reads without an API call (``image_type``, ``maintain_eol``,
    ``architecture``: a pin migrated from format 1) takes them from the image just listed, keeping its time.
    """
    kept: dict[Place, Pin] = {}
    for place, pin in new.items():
        before = old.get(place)
        if before is None or not before.same_as(pin):
            kept[place] = pin
        elif None in (before.image_type, before.maintain_eol, before.architecture) and pin is not before:
            kept[place] = pin.model_copy(update={"locked_at": before.locked_at})
        else:
            kept[place] = before
    return kept


def stale(old: Mapping[Place, Pin], declared: SelectionFile, regions: Mapping[str, Sequence[str]]) -> list[Place]:
    """Places whose pin cannot serve the file's query: missing from the lockfile, or for another query."""
    return [
        (name, region)
        for name, query in declared.queries.items()
        for region in regions[name]
        if (name, region) not in old or not old[(name, region)].answers(query, region)
    ]


def latest_pins(lockfile: Lockfile) -> dict[Place, Pin]:
    """Every selection's own pin (channel ``latest``) by place."""
    return {
        (holder.selection, holder.region): holder.pin for holder in lockfile.holdings() if holder.channel == LATEST
    }
