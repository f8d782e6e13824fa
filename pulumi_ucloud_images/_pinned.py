"""``PinnedImage``: a golden-image pin that changes only when its query, or the ``repin`` trigger, changes.

A Pulumi dynamic resource. Create resolves the query strictly, once, and keeps the image and the validated
query in state; a later run compares only the query and ``repin``, so a newly published image never moves
the pin. Changing a filter or ``repin`` replaces the pin (a new lookup; deleting the old pin touches nothing
in the cloud), and the replacement names ``image_id`` among its reasons. A refresh fails when the pinned
image is gone or no longer in one of the query's states, and otherwise records the newest current match as
``latest_image_id``, so drift is visible without churn.

A pin may also come from the lockfile (``lock="web"``, a selection of ``ucloud-images.toml`` locked in
``ucloud-images.lock.json``): the program reads that pin, and the resource keeps its image and query; it
changes when the lockfile's pin changes (a reviewed ``ucloud-images lock --update``), never by a lookup.

The provider is pickled into the program's state, so it holds no settings and no keys: it resolves them at
each call from the stack config handed to :meth:`PinnedImageProvider.configure` (``ucloud:*``), the
``UCLOUD_*`` environment and the UCloud CLI's profile files, and it pickles without that config.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    Config,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pydantic import ValidationError

from . import _query
from ._errors import AmbiguousImageError, CredentialsError, InvalidQueryError, NoImageFoundError, UCloudImagesError
from ._image import Image
from ._listing import Client
from ._lock import Pin, _usable, check_locked_query, fetch_pinned, read_pin
from ._lookup import list_images, lookup_images
from ._pulumi_sdk import UNKNOWN
from ._query import ImageQuery, invalid_query_errors
from ._select import eol_warning
from ._settings import _SOURCES, PYTHON_FACE, Face, Settings, resolve_region, resolve_settings

__all__ = ["PinnedImage", "PinnedImageProvider"]

PROVIDER_KEY = "__provider"
REPIN = "repin"
QUERY = "query"  # in the outputs: the validated query, every field (as the schema's ImageQuery type has them)
LOCKED = "locked"  # the lockfile pin a PinnedImage(lock=...) was declared with: name, lockfile and the pin
EOL_WARNING = "eol_warning"
OUTPUTS = ("image_id", "image_name", "os_name", "create_time", "features", "latest_image_id", EOL_WARNING)
_FILTERS = tuple(ImageQuery.model_fields)
# The settings the region depends on: the region itself, and the profile whose file may name it.
_REGION_KEYS = (_SOURCES["region"][0], _SOURCES["profile"][0])

_F = TypeVar("_F", bound=Callable[..., Any])


class SettingsNotKnownError(UCloudImagesError):
    """A lookup was asked for while a setting is still unknown (a preview); lookups need known settings."""


def _one_sentence(method: _F) -> _F:
    """Let a lookup error leave with its own message and no frames below the provider method."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except UCloudImagesError as exc:
            raise exc.with_traceback(None) from None

    return wrapper  # type: ignore[return-value]


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


def _filters(props: Mapping[str, Any]) -> dict[str, Any]:
    return {name: props[name] for name in _FILTERS if props.get(name) is not None}


class PinnedImageProvider(ResourceProvider):
    """The CRUD of :class:`PinnedImage`. Holds nothing but the stack config given to :meth:`configure`."""

    def __init__(self, face: Face = PYTHON_FACE) -> None:
        super().__init__()
        self._config: Config | None = None
        self._face = face  # how messages name the settings' sources: the Python API's, or the plugin's

    def __getstate__(self) -> dict[str, Any]:
        return {}  # the stack config (it may hold the private key) never leaves the process that received it

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self._config = None
        self._face = PYTHON_FACE

    def configure(self, req: ConfigureRequest) -> None:
        self._config = req.config

    def _read_config(self, *, unknown: Callable[[str], str | None]) -> Callable[[str], str | None] | None:
        """The ``config`` source of the settings; ``unknown(key)`` decides what a not-yet-known value reads as."""
        config = self._config
        if config is None:
            return None  # the core then reads the program's own stack config, if any

        def read(key: str) -> str | None:
            # The value is never bound to a name here: it may be the private key (see tests/test_secrets.py).
            if config.get(key) == UNKNOWN:
                return unknown(key)
            return cast("str | None", config.get(key) or None)

        return read

    def _settings(self, query: ImageQuery) -> Settings:
        def refuse(key: str) -> NoReturn:
            name = key.partition(":")[2] or key
            raise SettingsNotKnownError(f"Settings not known yet: {name}; lookups need known settings.")

        reader = self._read_config(unknown=refuse)
        return resolve_settings(region=query.region, project_id=query.project_id, config=reader, face=self._face)

    def _configured_region(self) -> Any:
        """The region the settings name (no keys needed); ``UNKNOWN`` while one it depends on is not known yet."""
        config = self._config
        if config is not None and any(is_unknown(config.get(key)) for key in _REGION_KEYS):
            return UNKNOWN
        return resolve_region(config=self._read_config(unknown=lambda key: None), face=self._face)

    def _missing_region(self, query: ImageQuery) -> CheckFailure | None:
        """No region anywhere: the core's sentence saying where it looked (it needs the keys to get that far)."""
        try:
            self._settings(query)
        except InvalidQueryError as exc:
            return CheckFailure("region", str(exc))
        except (CredentialsError, SettingsNotKnownError):
            pass  # not checkable yet: create needs the keys and the region, and names what is missing
        return None

    # -- check / diff --------------------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        """A warning about a pin (an image past its end of life): Pulumi's warning channel."""
        pulumi.log.warn(message)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate every input with the query model; fill in the configured region when none is given.

        A pin about to be resolved whose image is past its end of life is a warning (:meth:`warn`).
        """
        result, warnings = self.checked(_olds, news)
        for warning in warnings:
            self.warn(warning)
        return result

    def checked(self, _olds: dict[str, Any], news: dict[str, Any]) -> tuple[CheckResult, list[str]]:
        """:meth:`check`, with its warnings returned instead of sent (the plugin sends them to the engine)."""
        inputs = {name: integral(value) for name, value in news.items() if name != PROVIDER_KEY and value is not None}
        failures = _check_failures(inputs)
        if failures:
            return CheckResult(inputs, failures), []
        if isinstance(inputs.get(LOCKED), Mapping):
            return self._check_locked(inputs), []
        known = {name: value for name, value in _filters(inputs).items() if not is_unknown(value)}
        query = ImageQuery.model_validate(known)
        canonical = query.model_dump(mode="json")
        inputs.update({name: canonical[name] for name in known})
        inputs = {name: value for name, value in inputs.items() if value is not None}
        if "region" not in inputs:
            # A preview without keys still knows the region; with none configured now, the pin keeps its own.
            try:
                region = self._configured_region() or _olds.get("region")
            except CredentialsError as exc:  # a profile file that cannot be read, or a profile it lacks
                return CheckResult(inputs, [CheckFailure("region", str(exc))]), []
            if region is not None:
                inputs["region"] = region
            elif (failure := self._missing_region(query)) is not None:
                return CheckResult(inputs, [failure]), []
        filters = _filters(inputs)
        renewed = not _olds or _filters(_olds) != filters or _olds.get(REPIN) != inputs.get(REPIN)
        if renewed and not is_unknown(filters):
            failure, warnings = self._unresolvable(ImageQuery.model_validate(filters))
            if failure is not None:
                return CheckResult(inputs, [failure]), []
            return CheckResult(inputs, []), warnings
        return CheckResult(inputs, []), []

    def _check_locked(self, inputs: dict[str, Any]) -> CheckResult:
        """A pin taken from the lockfile: filters given too must be the query it was locked with; the checked
        inputs then hold that query and region, so the state has the query the image answers."""
        locked = inputs[LOCKED]
        pin = _pin_of(locked)
        given = _filters(inputs)
        if REPIN in inputs:
            return CheckResult(inputs, [CheckFailure(REPIN, (
                f"A pin taken from the lockfile (lock={locked['name']!r}) changes only with the lockfile, so repin "
                f"would do nothing; leave it out, and re-pin with 'ucloud-images lock --update {locked['name']}'."
            ))])
        if given and not is_unknown(given):
            try:
                check_locked_query(str(locked["name"]), pin, ImageQuery.model_validate(given), Path(locked["lockfile"]))
            except UCloudImagesError as exc:
                return CheckResult(inputs, [CheckFailure("", str(exc))])
        checked = {name: value for name, value in inputs.items() if name not in _FILTERS}
        checked.update(pin.query.to_args())
        checked["region"] = pin.region
        return CheckResult(checked, [])

    def _unresolvable(self, query: ImageQuery) -> tuple[CheckFailure | None, list[str]]:
        """A pin about to be resolved (new, or its query or ``repin`` changed) that matches nothing, or several;
        else the lookup's warnings (an image past its end of life).

        Create would fail the same way, but only at ``up``, and the dynamic-provider host reports a failed
        create with a Python traceback; a check failure is one sentence, at preview. Not checkable without
        settings (a keyless preview); an unchanged pin is never re-resolved here: drift is refresh's business.
        """
        try:
            result = lookup_images(query, settings=self._settings(query))
        except (NoImageFoundError, AmbiguousImageError) as exc:
            return CheckFailure("", str(exc)), []
        except UCloudImagesError:
            return None, []  # keys or settings missing or not known yet, or an API failure: create reports it
        return None, list(result.warnings)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        """No change unless a filter or ``repin`` changed; then a replacement, with ``image_id`` among the reasons."""
        old = ImageQuery.model_validate(_olds.get(QUERY) or {})
        given = _filters(_news)
        unknown = {name for name, value in given.items() if is_unknown(value)}
        new = ImageQuery.model_validate({name: value for name, value in given.items() if name not in unknown})
        changed = [name for name in _FILTERS if name in unknown or getattr(old, name) != getattr(new, name)]
        if is_unknown(_news.get(REPIN)) or _olds.get(REPIN) != _news.get(REPIN):
            changed.append(REPIN)
        if _locked_image(_olds) != _locked_image(_news):  # the lockfile's pin moved (a reviewed re-pin)
            changed.append(LOCKED)
        if not changed:
            return DiffResult(changes=False, replaces=[])
        return DiffResult(changes=True, replaces=[*changed, "image_id"], delete_before_replace=False)

    # -- create / read / update / delete ---------------------------------------------------------------------

    @_one_sentence
    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._pin(props)
        return CreateResult(outs["image_id"], outs)

    @_one_sentence
    def update(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> UpdateResult:
        """Resolve the new query (the diff asks for a replacement, so the engine normally creates instead)."""
        return UpdateResult(self._pin(_news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to do: a pin is state only, and the image belongs to whoever published it."""

    @_one_sentence
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Confirm the pinned image still exists in one of the query's states; record the newest current match.

        The query comes from the state; a read without one (``PinnedImage.get``, an import) rebuilds it from
        the filter inputs, and with neither there is nothing to check the image against.
        """
        stored = props.get(QUERY)
        if stored is None and not _filters(props):
            raise InvalidQueryError(
                f"The pin {id_} has neither a query in its state nor filter inputs, so a refresh cannot check it; "
                "declare it with its filters (region, image_type, name_regex, ...) and run 'pulumi up'.",
                field=QUERY,
            )
        query = ImageQuery.model_validate(stored if stored is not None else _filters(props))
        pinned = str(props.get("image_id") or id_)
        settings = self._settings(query)
        region = str(settings.region)  # the query's own region, else the configured one (settings require one)
        with Client(settings) as client:  # not the shared, memoised one: a refresh must see the cloud as it is now
            found = fetch_pinned(pinned, region, query, client)
            latest = list_images(query, client=client)
        latest_id = latest[0].image_id if latest else None
        if isinstance(found, str):
            newest = f"pin {latest_id}" if latest_id else "pin a new image"
            raise NoImageFoundError(
                f"{found[:1].upper()}{found[1:]}; set a new repin value or change the query, then run "
                f"'pulumi up' to {newest}."
            )
        outs = {
            **_without_provider(props),
            QUERY: query.model_dump(mode="json"),
            **_described(found, query, region),
            "latest_image_id": latest_id,
        }
        return ReadResult(id_, outs)

    def _pin(self, props: Mapping[str, Any]) -> dict[str, Any]:
        query = ImageQuery.model_validate(_filters(props))
        locked = props.get(LOCKED)
        if isinstance(locked, Mapping):
            return self._pin_locked(props, query, locked)
        result = lookup_images(query, settings=self._settings(query))
        return {
            **_without_provider(props),
            QUERY: query.model_dump(mode="json"),
            REPIN: props.get(REPIN),
            **_described(result.image, query, result.region or str(query.region)),
            "latest_image_id": result.ids[0],
        }

    def _pin_locked(self, props: Mapping[str, Any], query: ImageQuery, locked: Mapping[str, Any]) -> dict[str, Any]:
        """The lockfile's pin, confirmed (it exists in one of the query's states) with the newest match beside it."""
        pin = _pin_of(locked)
        settings = self._settings(query)
        with Client(settings) as client:
            found = _usable(fetch_pinned(pin.image_id, pin.region, query, client), str(locked["name"]),
                            Path(locked["lockfile"]))
            latest = list_images(query, client=client)
        warning = eol_warning(found, query, pin.region, _query.utc_today())
        if warning is not None:
            self.warn(f"selection {locked['name']!r} of {locked['lockfile']} pins {warning}")
        return {
            **_without_provider(props),
            QUERY: query.model_dump(mode="json"),
            **_described(found, query, pin.region),
            "latest_image_id": latest[0].image_id if latest else None,
        }


def _pin_of(locked: Mapping[str, Any]) -> Pin:
    """The lockfile pin carried in a ``locked`` input (as :class:`PinnedImage` read it from the lockfile)."""
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


def _check_failures(inputs: Mapping[str, Any]) -> list[CheckFailure]:
    """One failure per problem, each the core's sentence naming the property; unknown values wait for later."""
    failures = []
    repin = inputs.get(REPIN)
    if repin is not None and not isinstance(repin, str):
        failures.append(CheckFailure(REPIN, f"Invalid repin {repin!r}: must be a string (any new value re-pins)."))
    known = {name: value for name, value in inputs.items() if name not in (REPIN, LOCKED) and not is_unknown(value)}
    try:
        ImageQuery.model_validate(known)
    except ValidationError as exc:
        failures += [CheckFailure(error.field or "", str(error)) for error in invalid_query_errors(exc)]
    return failures


def _without_provider(props: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in props.items() if name != PROVIDER_KEY}


def _described(image: Image, query: ImageQuery, region: str) -> dict[str, Any]:
    return {
        "image_id": image.image_id,
        "image_name": image.image_name,
        "os_name": image.os_name,
        "create_time": image.create_time,
        "features": list(image.features),
        # Kept in state so the program shows it: a dynamic provider's own warnings never reach the engine.
        EOL_WARNING: eol_warning(image, query, region, _query.utc_today()),
    }


class PinnedImage(pulumi.dynamic.Resource, module="ucloud-images", name="PinnedImage"):
    """An image ID resolved once and kept until the query or ``repin`` changes.

    The filters are those of :func:`get_images` (``features`` as an input is the filter; as an output it
    is the pinned image's features). Settings come from stack config ``ucloud:*``, the environment and the
    UCloud CLI's profile files, never from inputs, so no key reaches the state.

    ``lock="NAME"`` takes the pin of that selection from the lockfile (``lockfile``, default: the nearest
    ``ucloud-images.lock.json`` upwards) instead of resolving a query: no filter needs repeating, and filters
    given as well must be the query it was locked with. It changes when the lockfile's pin does.
    """

    image_id: pulumi.Output[str]
    """The pinned image ID."""
    image_name: pulumi.Output[str]
    """The pinned image's name."""
    os_name: pulumi.Output[str]
    """The pinned image's operating system name."""
    create_time: pulumi.Output[int]
    """When the pinned image was created, unix seconds."""
    features: pulumi.Output[list[str]]
    """The pinned image's features."""
    latest_image_id: pulumi.Output[str | None]
    """The newest image that matches the query now (after a refresh); differs from ``image_id`` on drift."""
    eol_warning: pulumi.Output[str | None]
    """Set when the pinned image was past its end of life at the last create or refresh; shown as a warning."""

    def __init__(
        self,
        resource_name: str,
        *,
        region: pulumi.Input[str] | None = None,
        zone: pulumi.Input[str] | None = None,
        project_id: pulumi.Input[str] | None = None,
        image_type: pulumi.Input[str] | None = None,
        os_type: pulumi.Input[str] | None = None,
        func_type: pulumi.Input[str] | None = None,
        image_id: pulumi.Input[str] | None = None,
        ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        name_regex: pulumi.Input[str] | None = None,
        os_name_regex: pulumi.Input[str] | None = None,
        features: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        architecture: pulumi.Input[str] | None = None,
        states: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        most_recent: pulumi.Input[bool] | None = None,
        include_marketplace: pulumi.Input[bool] | None = None,
        exclude_eol: pulumi.Input[bool] | None = None,
        supported_until: pulumi.Input[str | date] | None = None,
        gpu_types: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        scene_categories: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        vendor_regex: pulumi.Input[str] | None = None,
        prices: pulumi.Input[bool] | None = None,
        repin: pulumi.Input[str] | None = None,
        lock: str | None = None,
        lockfile: str | os.PathLike[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        values = dict(locals())
        props: dict[str, Any] = dict.fromkeys(OUTPUTS)
        props.update({name: values[name] for name in (*_FILTERS, REPIN)})
        if isinstance(props.get("supported_until"), date):
            props["supported_until"] = props["supported_until"].isoformat()  # a date travels as its text
        if lock is not None:
            props[LOCKED] = _read_locked(lock, lockfile)
        elif lockfile is not None:
            raise _reported_error(InvalidQueryError(
                "lockfile works only with lock=NAME (taking a pin from the lockfile); pass lock, or leave it out.",
                field="lockfile",
            ))
        super().__init__(PinnedImageProvider(), resource_name, props, opts)
        self.eol_warning.apply(self._show)

    def _show(self, warning: str | None) -> None:
        """The pin's end-of-life warning, from the program: unlike the dynamic-provider host, it reaches the engine."""
        if warning:
            pulumi.log.warn(f"the pinned {warning}", resource=self)


def _reported_error(exc: UCloudImagesError) -> UCloudImagesError:
    from ._functions import _as_run_error  # Pulumi reports a RunError as its sentence, without a stack trace

    return _as_run_error(exc.with_traceback(None))


def _read_locked(lock: str, lockfile: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The pin of selection ``lock``, read in the program (whose working directory is the project's)."""
    try:
        pin, path = read_pin(lock, lockfile)
    except UCloudImagesError as exc:
        raise _reported_error(exc) from None
    return {"name": lock, "lockfile": str(path), **pin.to_json()}
