"""``PinnedImage``: a golden-image pin that changes only when its query, or the ``repin`` trigger, changes.

A Pulumi dynamic resource. Create resolves the query strictly, once, and keeps the image in state; a later
run compares only the inputs, so a newly published image never moves the pin. Changing a filter or ``repin``
replaces the pin (a new lookup; deleting the old pin touches nothing in the cloud), and the replacement names
``image_id`` among its reasons. A refresh fails when the pinned image is gone or no longer in one of the
query's states, and otherwise records the newest current match as ``latest_image_id``, so drift is visible
without churn.

The provider is pickled into the program's state, so it holds no settings and no keys: it resolves them at
each call from the stack config handed to :meth:`PinnedImageProvider.configure` (``ucloud:*``), the
``UCLOUD_*`` environment and the UCloud CLI's profile files, and it pickles without that config.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

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
from pulumi.runtime.rpc import UNKNOWN
from pydantic import ValidationError

from ._client import Client
from ._errors import CredentialsError, InvalidQueryError, NoImageFoundError, UCloudImagesError
from ._image import Image
from ._lookup import find_images, lookup_images
from ._query import ImageQuery, invalid_query_error
from ._settings import Settings, resolve_settings

__all__ = ["PinnedImage", "PinnedImageProvider"]

PROVIDER_KEY = "__provider"
REPIN = "repin"
QUERY = "query"  # in the outputs: the validated query, apart from `features`, which there is the image's own
OUTPUTS = ("image_id", "image_name", "os_name", "create_time", "features", "latest_image_id")
_FILTERS = tuple(ImageQuery.model_fields)
_UNORDERED = frozenset({"ids", "features", "states"})

_F = TypeVar("_F", bound=Callable[..., Any])


def _one_sentence(method: _F) -> _F:
    """Let a lookup error leave with its own message and no frames below the provider method."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except UCloudImagesError as exc:
            raise exc.with_traceback(None) from None

    return wrapper  # type: ignore[return-value]


def _is_unknown(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_is_unknown(item) for item in value)
    return isinstance(value, str) and value == UNKNOWN


def _filters(props: Mapping[str, Any]) -> dict[str, Any]:
    return {name: props[name] for name in _FILTERS if props.get(name) is not None}


def _comparable(args: Mapping[str, Any]) -> dict[str, Any]:
    return {name: sorted(value) if name in _UNORDERED else value for name, value in args.items()}


class PinnedImageProvider(ResourceProvider):
    """The CRUD of :class:`PinnedImage`. Holds nothing but the stack config given to :meth:`configure`."""

    def __init__(self) -> None:
        super().__init__()
        self._config: Config | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}  # the stack config (it may hold the private key) never leaves the process that received it

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self._config = None

    def configure(self, req: ConfigureRequest) -> None:
        self._config = req.config

    def _settings(self, query: ImageQuery) -> Settings:
        config = self._config
        reader = None if config is None else lambda key: _text(config.get(key))
        return resolve_settings(region=query.region, project_id=query.project_id, config=reader)

    # -- check / diff --------------------------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate every input with the query model; fill in the configured region when none is given."""
        inputs = {name: value for name, value in news.items() if name != PROVIDER_KEY and value is not None}
        failures = [failure for name, value in inputs.items() if (failure := _check_one(name, value))]
        if failures:
            return CheckResult(inputs, failures)
        known = {name: value for name, value in _filters(inputs).items() if not _is_unknown(value)}
        query = ImageQuery.model_validate(known)
        canonical = query.model_dump()
        inputs.update({name: _plain(canonical[name]) for name in known})
        if "region" not in inputs:
            try:
                inputs["region"] = self._settings(query).region
            except InvalidQueryError as exc:
                return CheckResult(inputs, [CheckFailure("region", str(exc))])
            except CredentialsError:
                pass  # no keys yet: create reports it, a preview need not
        return CheckResult(inputs, [])

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        """No change unless a filter or ``repin`` changed; then a replacement, with ``image_id`` among the reasons."""
        old_query = _comparable(_olds.get(QUERY) or {})
        given = _filters(_news)
        unknown = {name for name, value in given.items() if _is_unknown(value)}
        known = ImageQuery.model_validate({name: value for name, value in given.items() if name not in unknown})
        new_query = _comparable(known.to_args())
        changed = [name for name in _FILTERS if name in unknown or old_query.get(name) != new_query.get(name)]
        if _is_unknown(_news.get(REPIN)) or _olds.get(REPIN) != _news.get(REPIN):
            changed.append(REPIN)
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
        """Confirm the pinned image still exists in one of the query's states; record the newest current match."""
        query = ImageQuery.model_validate(props.get(QUERY) or {})
        pinned = str(props.get("image_id") or id_)
        settings = self._settings(query)
        region = query.region or settings.region or ""
        by_id = ImageQuery.model_validate({"image_id": pinned, "project_id": query.project_id})
        with Client(settings) as client:  # not the shared, memoised one: a refresh must see the cloud as it is now
            listing = client.describe_images(by_id.server_params(region, settings.project_id))
            latest = find_images(query, client=client)
        current = next((image for image in listing if image.image_id == pinned), None)
        latest_id = latest[0].image_id if latest else None
        if current is None or current.state not in query.states:
            now = "no longer exists" if current is None else f"is {current.state} now"
            wanted = " or ".join(query.states)
            newest = f"pin {latest_id}" if latest_id else "pin a new image"
            raise NoImageFoundError(
                f"The pinned image {pinned} {now} in region {region} (the pin needs it {wanted}); set a new "
                f"repin value or change the query, then run 'pulumi up' to {newest}."
            )
        outs = {**_without_provider(props), **_described(current), "latest_image_id": latest_id}
        return ReadResult(id_, outs)

    def _pin(self, props: Mapping[str, Any]) -> dict[str, Any]:
        query = ImageQuery.model_validate(_filters(props))
        result = lookup_images(query, settings=self._settings(query))
        return {
            **_without_provider(props),
            QUERY: query.to_args(),
            REPIN: props.get(REPIN),
            **_described(result.image),
            "latest_image_id": result.ids[0],
        }


def _check_one(name: str, value: Any) -> CheckFailure | None:
    if _is_unknown(value):
        return None
    if name == REPIN:
        if isinstance(value, str):
            return None
        return CheckFailure(REPIN, f"Invalid repin {value!r}: must be a string (any new value re-pins).")
    if name not in ImageQuery.model_fields:
        allowed = ", ".join((*_FILTERS, REPIN))
        return CheckFailure(name, f"Unknown property {name!r}; PinnedImage takes {allowed}.")
    try:
        ImageQuery.model_validate({name: value})
    except ValidationError as exc:
        return CheckFailure(name, str(invalid_query_error(exc)))
    return None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _without_provider(props: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in props.items() if name != PROVIDER_KEY}


def _described(image: Image) -> dict[str, Any]:
    return {
        "image_id": image.image_id,
        "image_name": image.image_name,
        "os_name": image.os_name,
        "create_time": image.create_time,
        "features": list(image.features),
    }


class PinnedImage(pulumi.dynamic.Resource, module="ucloud-images", name="PinnedImage"):
    """An image ID resolved once and kept until the query or ``repin`` changes.

    The filters are those of :func:`get_images` (``features`` as an input is the filter; as an output it
    is the pinned image's features). Settings come from stack config ``ucloud:*``, the environment and the
    UCloud CLI's profile files, never from inputs, so no key reaches the state.
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
        repin: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        values = dict(locals())
        props: dict[str, Any] = dict.fromkeys(OUTPUTS)
        props.update({name: values[name] for name in (*_FILTERS, REPIN)})
        super().__init__(PinnedImageProvider(), resource_name, props, opts)
