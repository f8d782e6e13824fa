"""The pin service: check, diff, create and read of a ``PinnedImage``, on plain Python values.

Check, diff, create and read share the rules of one resource (which inputs are filters, the
image check resolved, the lockfile's pin); split apart, each part would import the others' private helpers.

Both faces of the resource call it directly: the Python dynamic provider
(:class:`~pulumi_ucloud_images._pulumi.pinned_image.PinnedImageProvider`)
and the provider plugin (:mod:`~pulumi_ucloud_images._pulumi.provider`), each converting only its own wire format.
Properties are the
models' field names (``name_regex``, ``latest_image_id``); a value not known yet (a preview) is the engine's
``UNKNOWN`` sentinel, anywhere inside a value. Messages are worded in the face's spelling (``naming``: the
plugin's ``nameRegex``) and name the settings' sources the face's way (``face``), so no face rewrites them.

A pin resolves its query strictly, once, and keeps the image and the validated query; only the query and
``repin`` decide a change, so a newly published image never moves it. Where the settings are known, check already
resolves a new pin and puts the image in the checked inputs (``image_id``, marked by ``resolved_image_id``): a
preview shows it (the engine previews a create as its checked inputs), and create pins exactly that image, even
if a newer one was published in between. A pin may also come from the lockfile
(the ``locked`` input: the selection's name, the lockfile and the pin), which it keeps until that pin changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from pydantic import ValidationError

from .. import _query
from .._api.client import Client
from .._api.image import Image
from .._errors import (
    AmbiguousImageError,
    CredentialsError,
    InvalidQueryError,
    NoImageFoundError,
    SettingsNotKnownError,
    UCloudImagesError,
)
from .._lookup import fetch_listing, lookup_images
from .._naming import Naming
from .._query import ImageQuery, invalid_query_errors
from .._select import eol_warning, filter_images
from .._settings.scope import settings_for
from .._settings.settings import PYTHON_FACE, SETTINGS, ConfigSource, Face, Settings, resolve_region
from .sdk import UNKNOWN, stack_config

if TYPE_CHECKING:  # the lockfile's models are imported where a pin from the lockfile or a refresh needs them
    from .._lockfile.pins import Pin

__all__ = [
    "EOL_WARNING",
    "FILTERS",
    "LOCKED",
    "OUTPUTS",
    "PROVIDER_KEY",
    "QUERY",
    "REPIN",
    "RESOLVED",
    "Checked",
    "InputProblem",
    "PinService",
    "integral",
    "is_unknown",
]

PROVIDER_KEY = "__provider"  # the dynamic provider's own input (its pickle); never a property of the pin
REPIN = "repin"
QUERY = "query"  # in the outputs: the validated query, every field (as the schema's ImageQuery type has them)
LOCKED = "locked"  # the lockfile pin a PinnedImage(lock=...) was declared with: name, lockfile and the pin
# The plugin's inputs naming a lockfile pin (NAME or NAME@CHANNEL, and the lockfile): check reads it into LOCKED.
LOCK, LOCKFILE = "lock", "lockfile"
EOL_WARNING = "eol_warning"
# In checked inputs: the image check resolved the query to, which is then the input image_id (not a filter).
RESOLVED = "resolved_image_id"
OUTPUTS = ("image_id", "image_name", "os_name", "create_time", "features", "latest_image_id", EOL_WARNING)
FILTERS = tuple(ImageQuery.model_fields)
# The settings the region depends on: the region itself, and the profile whose file may name it.
_REGION_KEYS = tuple(f"ucloud:{SETTINGS[name].config_key}" for name in ("region", "profile"))

ConfigReader = Callable[[str], Any]
"""A config key (``ucloud:region``) -> its value, ``UNKNOWN`` while not known yet, or None."""


def is_unknown(value: Any) -> bool:
    """Not known yet (a preview): the engine's unknown sentinel, here or anywhere inside a list or object."""
    if isinstance(value, (list, tuple)):
        return any(is_unknown(item) for item in value)
    if isinstance(value, Mapping):
        return any(is_unknown(item) for item in value.values())
    return isinstance(value, str) and value == UNKNOWN


def integral(value: Any) -> Any:
    """Pulumi numbers arrive as floats; whole ones become ints, so checks and messages see what the user wrote."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [integral(item) for item in value]
    return value


@dataclass(frozen=True)
class InputProblem:
    """One problem with one input: the property (a field name; empty for the pin as a whole) and a sentence."""

    property: str
    reason: str


@dataclass(frozen=True)
class Checked:
    """What check answers: the inputs as the pin keeps them, the problems, and warnings for the user."""

    inputs: dict[str, Any]
    failures: list[InputProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _filters(props: Mapping[str, Any]) -> dict[str, Any]:
    """The query's filters among ``props``: an ``image_id`` that check resolved (see ``RESOLVED``) is none."""
    resolved = props.get(RESOLVED) is not None and props.get(RESOLVED) == props.get("image_id")
    return {name: props[name] for name in FILTERS
            if props.get(name) is not None and not (resolved and name == "image_id")}


class PinService:
    """The logic of a pin, for one face. ``config`` reads that face's config (None: the program's own stack
    config); ``warn`` gets the warnings of a create (a lockfile pin past its end of life)."""

    def __init__(
        self,
        config: ConfigReader | None = None,
        *,
        face: Face = PYTHON_FACE,
        naming: Naming | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._config = config
        self._face = face
        self._naming: Naming = naming or {}
        self._warn = warn or (lambda message: None)

    def _name(self, field_name: str) -> str:
        return self._naming.get(field_name, field_name)

    # -- settings ----------------------------------------------------------------------------------------

    def _reader(self, *, unknown: Callable[[str], str | None]) -> Callable[[str], str | None] | ConfigSource:
        """The ``config`` source of the settings; ``unknown(key)`` decides what a not-yet-known value reads as."""
        config = self._config
        if config is None:
            return stack_config()  # not configured by an engine: the program's own stack config, if any

        def read(key: str) -> str | None:
            # The value is never bound to a name here: it may be the private key (see tests/test_secrets.py).
            if config(key) == UNKNOWN:
                return unknown(key)
            return cast("str | None", config(key) or None)

        return read

    def settings(self, query: ImageQuery) -> Settings:
        """The settings of a lookup for ``query``; every one must be known."""

        def refuse(key: str) -> NoReturn:
            name = key.partition(":")[2] or key
            raise SettingsNotKnownError(f"Settings not known yet: {name}; lookups need known settings.")

        reader = self._reader(unknown=refuse)
        return settings_for(query, config=reader, face=self._face)

    def _configured_region(self) -> Any:
        """The region the settings name (no keys needed); ``UNKNOWN`` while one it depends on is not known yet."""
        config = self._config
        if config is not None and any(is_unknown(config(key)) for key in _REGION_KEYS):
            return UNKNOWN
        return resolve_region(config=self._reader(unknown=lambda key: None), face=self._face)

    def _missing_region(self, query: ImageQuery) -> InputProblem | None:
        """No region anywhere: the core's sentence saying where it looked (and for the keys, if missing too)."""
        try:
            self.settings(query)
        except InvalidQueryError as exc:
            return InputProblem("region", str(exc))
        except (CredentialsError, SettingsNotKnownError):
            pass  # a region was found after all (keys are create's business), or a setting is not known yet
        return None

    # -- check / diff --------------------------------------------------------------------------------------

    def check(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> Checked:
        """Validate every input once with the query model; fill in the configured region when none is given.

        A pin about to be resolved is looked up when the settings are known, so a preview already fails on no
        match or an ambiguity; an image past its end of life is a warning.
        """
        inputs = {name: integral(value) for name, value in news.items() if name != PROVIDER_KEY and value is not None}
        if inputs.get(RESOLVED) is not None and inputs.get(RESOLVED) == inputs.get("image_id"):
            del inputs[RESOLVED], inputs["image_id"]  # a previous check's answer given back: never a filter
        failures = []
        repin = inputs.get(REPIN)
        if repin is not None and not isinstance(repin, str):
            failures.append(InputProblem(
                REPIN, f"Invalid {self._name(REPIN)} {repin!r}: must be a string (any new value re-pins)."
            ))
        if (LOCK in inputs or LOCKFILE in inputs) and LOCKED not in inputs:
            if is_unknown([inputs.get(LOCK), inputs.get(LOCKFILE), inputs.get("region")]):
                return Checked(inputs)  # a preview: read once known
            read = self._read_lock(inputs)
            if isinstance(read, InputProblem):
                return Checked(inputs, [read])
            checked = self.check(olds, {**inputs, LOCKED: read[0]})
            return Checked(checked.inputs, checked.failures, [*read[1], *checked.warnings])
        known = {
            name: value for name, value in inputs.items()
            if name not in (REPIN, LOCKED, LOCK, LOCKFILE) and not is_unknown(value)
        }
        query: ImageQuery | None = None
        try:
            query = ImageQuery.model_validate(known)
        except ValidationError as exc:
            errors = invalid_query_errors(exc, naming=self._naming)
            failures += [InputProblem(error.field or "", str(error)) for error in errors]
        if query is None or failures:
            return Checked(inputs, failures)
        if isinstance(inputs.get(LOCKED), Mapping):
            return self._check_locked(inputs, query if known else None)
        canonical = query.model_dump(mode="json")
        inputs.update({name: canonical[name] for name in known})
        inputs = {name: value for name, value in inputs.items() if value is not None}
        if "region" not in inputs:
            # A preview without keys still knows the region; with none configured now, the pin keeps its own.
            try:
                region = self._configured_region() or olds.get("region")
            except CredentialsError as exc:  # a profile file that cannot be read, or a profile it lacks
                return Checked(inputs, [InputProblem("region", str(exc))])
            if region is not None:
                inputs["region"] = region
            elif (failure := self._missing_region(query)) is not None:
                return Checked(inputs, [failure])
        filters = _filters(inputs)
        renewed = not olds or _filters(olds) != filters or olds.get(REPIN) != inputs.get(REPIN)
        if renewed and not is_unknown(filters):
            return self._resolvable(inputs, query.model_copy(update={"region": inputs.get("region")}))
        if not renewed and olds.get(RESOLVED) is not None and "image_id" not in inputs:
            inputs.update({"image_id": olds[RESOLVED], RESOLVED: olds[RESOLVED]})  # the inputs it was created with
        return Checked(inputs)

    def _read_lock(self, inputs: dict[str, Any]) -> InputProblem | tuple[dict[str, Any], list[str]]:
        """The plugin's ``lock`` input read from the lockfile (as the Python face reads it in the program):
        the ``locked`` pin and the warnings of reading it."""
        ref, path, region = inputs.get(LOCK), inputs.get(LOCKFILE), inputs.get("region")
        if ref is None:
            return InputProblem(
                LOCKFILE,
                f"{self._name(LOCKFILE)} works only with {self._name(LOCK)} (taking a pin from the lockfile); pass "
                "it, or leave it out.",
            )
        if not all(isinstance(value, (str, type(None))) for value in (ref, path, region)):
            return InputProblem(LOCK, f"{self._name(LOCK)} must be NAME or NAME@CHANNEL, and {self._name(LOCKFILE)} a "
                                 "path.")
        from .._lockfile.pins import read_locked

        try:
            read = read_locked(ref, path, region, configured=self._configured_region)
        except UCloudImagesError as exc:
            return InputProblem(LOCK, str(exc))
        return {"name": ref, "lockfile": str(read.path), **read.pin.to_json()}, list(read.warnings)

    def _check_locked(self, inputs: dict[str, Any], given: ImageQuery | None) -> Checked:
        """A pin taken from the lockfile: filters given too must be the query it was locked with; the checked
        inputs then hold that query and region, so the state has the query the image answers."""
        locked = inputs[LOCKED]
        pin = _pin_of(locked)
        if REPIN in inputs:
            return Checked(inputs, [InputProblem(REPIN, (
                f"A pin taken from the lockfile (lock={locked['name']!r}) changes only with the lockfile, so "
                f"{self._name(REPIN)} would do nothing; leave it out, and re-pin with "
                f"'ucloud-images lock --update {str(locked['name']).partition('@')[0]}'."
            ))])
        if given is not None and given != ImageQuery(region=given.region) and not is_unknown(_filters(inputs)):
            from .._lockfile.pins import check_locked_query

            try:
                check_locked_query(str(locked["name"]), pin, given, Path(locked["lockfile"]))
            except UCloudImagesError as exc:
                return Checked(inputs, [InputProblem("", str(exc))])
        checked = {name: value for name, value in inputs.items() if name not in FILTERS}
        checked.update(pin.query.to_args())
        checked["region"] = pin.region
        return Checked(checked)

    def _resolvable(self, inputs: dict[str, Any], query: ImageQuery) -> Checked:
        """A pin about to be resolved (new, or its query or ``repin`` changed) that matches nothing, or several,
        fails; else the lookup's warnings (an image past its end of life) go with the answer.

        Create would fail the same way, but only at ``up``, and the dynamic-provider host reports a failed
        create with a Python traceback; a check failure is one sentence, at preview. Not checkable without
        settings (a keyless preview); an unchanged pin is never re-resolved here: drift is refresh's business.
        """
        try:
            result = lookup_images(query, settings=self.settings(query), naming=self._naming)
        except (NoImageFoundError, AmbiguousImageError) as exc:
            return Checked(inputs, [InputProblem("", str(exc))])
        except UCloudImagesError:
            return Checked(inputs)  # keys or settings missing or not known yet, or an API failure: create says
        if "image_id" not in inputs:  # the image create will pin, shown by the preview
            inputs = {**inputs, "image_id": result.image_id, RESOLVED: result.image_id}
        return Checked(inputs, warnings=list(result.warnings))

    def diff(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        """The reasons for a replacement (empty: no change): each changed filter, ``repin`` or ``locked``, then
        ``image_id``. Only the validated query in state and ``repin`` count; newer images never do."""
        old = ImageQuery.model_validate(olds.get(QUERY) or {})
        given = _filters(news)
        unknown = {name for name, value in given.items() if is_unknown(value)}
        new = ImageQuery.model_validate({name: value for name, value in given.items() if name not in unknown})
        changed = [name for name in FILTERS if name in unknown or getattr(old, name) != getattr(new, name)]
        if is_unknown(news.get(REPIN)) or olds.get(REPIN) != news.get(REPIN):
            changed.append(REPIN)
        if _locked_image(olds) != _locked_image(news):  # the lockfile's pin moved (a reviewed re-pin)
            changed.append(LOCKED)
        return [*changed, "image_id"] if changed else []

    # -- create / read ---------------------------------------------------------------------------------------

    def preview(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """A preview's answer: the inputs, with every output not known until the lookup runs, except the image
        that check resolved, which create will pin."""
        known = {"image_id": props[RESOLVED]} if props.get(RESOLVED) is not None else {}
        return {**_own(props), **dict.fromkeys((*OUTPUTS, QUERY), UNKNOWN), **known}

    def create(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Resolve the query strictly (or take the lockfile's pin): the pin's outputs; its ID is ``image_id``."""
        query = ImageQuery.model_validate(_filters(props))
        locked = props.get(LOCKED)
        if isinstance(locked, Mapping):
            return self._create_locked(props, query, locked)
        if props.get(RESOLVED) is not None:
            return self._create_resolved(props, query, str(props[RESOLVED]))
        result = lookup_images(query, settings=self.settings(query), naming=self._naming)
        return {
            **_own(props),
            QUERY: query.model_dump(mode="json"),
            REPIN: props.get(REPIN),
            **self._described(result.image, query, result.region or str(query.region)),
            "latest_image_id": result.ids[0],
        }

    def _create_resolved(self, props: Mapping[str, Any], query: ImageQuery, image_id: str) -> dict[str, Any]:
        """The image check resolved the query to (and a preview showed), while it still matches, with the newest
        match beside it: a newer image published since does not move it. The listing is the one check read,
        while this process still holds it."""
        listing = fetch_listing(query, settings=self.settings(query))
        matches = filter_images(listing.images, listing.query, self._naming)
        found = next((image for image in matches if image.image_id == image_id), None)
        if found is None:
            raise NoImageFoundError(
                f"The image {image_id} that the query matched when this update was checked no longer matches it "
                f"in region {listing.region}; run 'pulumi up' again to resolve the query anew."
            )
        return {
            **_own(props),
            QUERY: query.model_dump(mode="json"),
            REPIN: props.get(REPIN),
            **self._described(found, query, listing.region or str(query.region)),
            "latest_image_id": matches[0].image_id,
        }

    def _create_locked(self, props: Mapping[str, Any], query: ImageQuery, locked: Mapping[str, Any]) -> dict[str, Any]:
        """The lockfile's pin, confirmed (it exists in one of the query's states) with the newest match beside it."""
        from .._lockfile.pins import fetch_pinned, require_usable

        pin = _pin_of(locked)
        settings = self.settings(query)
        with Client(settings) as client:
            found = require_usable(fetch_pinned(pin.image_id, pin.region, query, client), str(locked["name"]),
                            Path(locked["lockfile"]))
            latest = self._matches(query, client)
        warning = eol_warning(found, query, pin.region, _query.utc_today(), self._naming)
        if warning is not None:
            self._warn(f"selection {locked['name']!r} of {locked['lockfile']} pins {warning}")
        return {
            **_own(props),
            QUERY: query.model_dump(mode="json"),
            **self._described(found, query, pin.region),
            "latest_image_id": latest[0].image_id if latest else None,
        }

    def read(self, id_: str, props: Mapping[str, Any]) -> dict[str, Any]:
        """Confirm the pinned image still exists in one of the query's states; record the newest current match.

        The query comes from the state; a read without one (``PinnedImage.get``, an import) rebuilds it from
        the filter inputs, and with neither there is nothing to check the image against.
        """
        stored = props.get(QUERY)
        if stored is None and not _filters(props):
            filters = ", ".join(self._name(name) for name in ("region", "image_type", "name_regex"))
            raise InvalidQueryError(
                f"The pin {id_} has neither a query in its state nor filter inputs, so a refresh cannot check it; "
                f"declare it with its filters ({filters}, ...) and run 'pulumi up'.",
                field=QUERY,
            )
        query = ImageQuery.model_validate(stored if stored is not None else _filters(props))
        pinned = str(props.get("image_id") or id_)
        settings = self.settings(query)
        region = str(settings.region)  # the query's own region, else the configured one (settings require one)
        from .._lockfile.pins import fetch_pinned

        with Client(settings) as client:  # not the shared, memoised one: a refresh must see the cloud as it is now
            found = fetch_pinned(pinned, region, query, client)
            latest = self._matches(query, client)
        latest_id = latest[0].image_id if latest else None
        if isinstance(found, str):
            newest = f"pin {latest_id}" if latest_id else "pin a new image"
            raise NoImageFoundError(
                f"{found[:1].upper()}{found[1:]}; set a new {self._name(REPIN)} value or change the query, then run "
                f"'pulumi up' to {newest}."
            )
        return {
            **_own(props),
            QUERY: query.model_dump(mode="json"),
            **self._described(found, query, region),
            "latest_image_id": latest_id,
        }

    def _matches(self, query: ImageQuery, client: Client) -> list[Image]:
        """Every current match, newest first (no strictness), read through ``client``."""
        listing = fetch_listing(query, client=client)
        return filter_images(listing.images, listing.query, self._naming)

    def _described(self, image: Image, query: ImageQuery, region: str) -> dict[str, Any]:
        return {
            "image_id": image.image_id,
            "image_name": image.image_name,
            "os_name": image.os_name,
            "create_time": image.create_time,
            "features": list(image.features),
            # Kept in state so the program shows it: a dynamic provider's own warnings never reach the engine.
            EOL_WARNING: eol_warning(image, query, region, _query.utc_today(), self._naming),
        }


def _pin_of(locked: Mapping[str, Any]) -> Pin:
    """The lockfile pin carried in a ``locked`` input (as :class:`PinnedImage` read it from the lockfile)."""
    from .._lockfile.pins import Pin

    return Pin(
        query=ImageQuery.model_validate(locked["query"]),
        region=str(locked["region"]),
        image_id=str(locked["image_id"]),
        image_name=str(locked.get("image_name") or ""),
        create_time=0,
        locked_at=str(locked.get("locked_at") or ""),
    )


def _locked_image(props: Mapping[str, Any]) -> Any:
    locked = props.get(LOCKED)
    return locked.get("image_id") if isinstance(locked, Mapping) else None


def _own(props: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs a pin's outputs repeat: not the dynamic provider's own, nor the mark of a checked image."""
    return {name: value for name, value in props.items() if name not in (PROVIDER_KEY, RESOLVED)}
