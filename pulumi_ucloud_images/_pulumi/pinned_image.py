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

from .._errors import InvalidQueryError, UCloudImagesError
from .._lockfile.pins import read_locked
from .._settings.settings import PYTHON_FACE
from .pin_service import FILTERS, LOCKED, OUTPUTS, QUERY, REPIN, Checked, PinService, integral, is_unknown

__all__ = ["PinnedImage", "PinnedImageProvider"]
# Re-exported for the callers that name the pin's properties and its errors through this module.
__all__ += ["LOCKED", "OUTPUTS", "QUERY", "REPIN", "integral", "is_unknown"]

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


class PinnedImageProvider(ResourceProvider):
    """The CRUD of :class:`PinnedImage`: the pin service (:mod:`~pulumi_ucloud_images._pulumi.pin_service`) in
    ``pulumi.dynamic``'s types.

    Holds nothing but the stack config given to :meth:`configure`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._config: Config | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}  # the stack config (it may hold the private key) never leaves the process that received it

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self._config = None

    def configure(self, req: ConfigureRequest) -> None:
        self._config = req.config

    def _service(self) -> PinService:
        config = self._config
        return PinService(None if config is None else config.get, face=PYTHON_FACE,
                          warn=lambda message: self.warn(message))

    def warn(self, message: str) -> None:
        """A warning about a pin (an image past its end of life): Pulumi's warning channel."""
        pulumi.log.warn(message)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate every input with the query model; fill in the configured region when none is given.

        A pin about to be resolved whose image is past its end of life is a warning (:meth:`warn`).
        """
        checked = self._service().check(_olds, news)
        for warning in checked.warnings:
            self.warn(warning)
        return _check_result(checked)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        """No change unless a filter or ``repin`` changed; then a replacement, with ``image_id`` among the reasons."""
        replaces = self._service().diff(_olds, _news)
        if not replaces:
            return DiffResult(changes=False, replaces=[])
        return DiffResult(changes=True, replaces=replaces, delete_before_replace=False)

    @_one_sentence
    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._service().create(props)
        return CreateResult(outs["image_id"], outs)

    @_one_sentence
    def update(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> UpdateResult:
        """Resolve the new query (the diff asks for a replacement, so the engine normally creates instead)."""
        return UpdateResult(self._service().create(_news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to do: a pin is state only, and the image belongs to whoever published it."""

    @_one_sentence
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Confirm the pinned image still exists in one of the query's states; record the newest current match."""
        return ReadResult(id_, self._service().read(id_, props))


def _check_result(checked: Checked) -> CheckResult:
    return CheckResult(checked.inputs, [CheckFailure(f.property, f.reason) for f in checked.failures])


class PinnedImage(pulumi.dynamic.Resource, module="ucloud-images", name="PinnedImage"):
    """An image ID resolved once and kept until the query or ``repin`` changes.

    The filters are those of :func:`get_images` (``features`` as an input is the filter; as an output it
    is the pinned image's features). Settings come from stack config ``ucloud:*``, the environment and the
    UCloud CLI's profile files, never from inputs, so no key reaches the state.

    ``lock="NAME"`` (or ``"NAME@CHANNEL"``) takes that pin from the lockfile (``lockfile``, default: the
    nearest ``ucloud-images.lock.json`` upwards) instead of resolving a query: no filter needs repeating
    (``region`` picks one of the pin's regions), and filters given as well must be the query it was locked
    with. It changes when the lockfile's pin does. A revoked image fails; a revocation to come and a
    deprecation are warnings.
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
        # -- generated: query parameters (resource), by scripts/codegen.py --write
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
        software_regex: pulumi.Input[str] | None = None,
        prices: pulumi.Input[bool] | None = None,
        # -- end of generated parameters
        repin: pulumi.Input[str] | None = None,
        lock: str | None = None,
        lockfile: str | os.PathLike[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        arguments = {
            # -- generated: arguments by name (query), by scripts/codegen.py --write
            "region": region,
            "zone": zone,
            "project_id": project_id,
            "image_type": image_type,
            "os_type": os_type,
            "func_type": func_type,
            "image_id": image_id,
            "ids": ids,
            "name_regex": name_regex,
            "os_name_regex": os_name_regex,
            "features": features,
            "architecture": architecture,
            "states": states,
            "most_recent": most_recent,
            "include_marketplace": include_marketplace,
            "exclude_eol": exclude_eol,
            "supported_until": supported_until,
            "gpu_types": gpu_types,
            "scene_categories": scene_categories,
            "vendor_regex": vendor_regex,
            "software_regex": software_regex,
            "prices": prices,
            # -- end of generated arguments
            "repin": repin,
        }
        props: dict[str, Any] = dict.fromkeys(OUTPUTS)
        props.update({name: arguments[name] for name in (*FILTERS, REPIN)})
        if isinstance(props.get("supported_until"), date):
            props["supported_until"] = props["supported_until"].isoformat()  # a date travels as its text
        warnings: tuple[str, ...] = ()
        if lock is not None:
            props[LOCKED], warnings = _read_locked(lock, lockfile, region if isinstance(region, str) else None)
        elif lockfile is not None:
            raise _reported_error(InvalidQueryError(
                "lockfile works only with lock=NAME (taking a pin from the lockfile); pass lock, or leave it out.",
                field="lockfile",
            ))
        super().__init__(PinnedImageProvider(), resource_name, props, opts)
        self.eol_warning.apply(self._show)
        for warning in warnings:  # a revocation to come, a deprecation: shown as the end-of-life warning is
            pulumi.log.warn(warning, resource=self)

    def _show(self, warning: str | None) -> None:
        """The pin's end-of-life warning, from the program: unlike the dynamic-provider host, it reaches the engine."""
        if warning:
            pulumi.log.warn(f"the pinned {warning}", resource=self)


def _reported_error(exc: UCloudImagesError) -> UCloudImagesError:
    from .functions import _as_run_error

    return _as_run_error(exc.with_traceback(None))


def _read_locked(
    lock: str, lockfile: str | os.PathLike[str] | None, region: str | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The pin ``lock`` (``NAME`` or ``NAME@CHANNEL``) in ``region`` (else its one region, else the configured
    one), read in the program (whose working directory is the project's), and the warnings of reading it."""
    from .functions import _configured_region

    try:
        read = read_locked(lock, lockfile, region, configured=_configured_region)
    except UCloudImagesError as exc:
        raise _reported_error(exc) from None
    return {"name": lock, "lockfile": str(read.path), **read.pin.to_json()}, read.warnings
