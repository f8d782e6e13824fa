"""``get_images`` and ``get_images_output``: the lookup shaped like a function of a generated Pulumi SDK, and
its result ``GetImagesResult`` (a view over the library's ``LookupResult``, with the schema's wire names).

Where the answer comes from depends on the runtime around the call, decided per call by
:func:`~.sdk.mocks_are_set`: under ``pulumi.runtime.set_mocks`` the invoke machinery carries the call to the
user's ``Mocks.call`` (token ``ucloud-images:index:getImages``) and no request is made; in a real Pulumi
program and in plain Python the lookup runs here, in-process, through the memoised shared client, so no
provider plugin is needed. Errors are the library's own, made to also be :class:`pulumi.RunError`, so Pulumi
reports them as one sentence instead of a stack trace.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar, cast

import pulumi
import pulumi.runtime
from pydantic import SecretStr, ValidationError

from .._api.image import Image, ImagePrice
from .._errors import InvalidQueryError, ResponseFormatError, UCloudImagesError
from .._lookup import lookup_images
from .._naming import GET_IMAGES_TOKEN, field_keys
from .._query import ImageQuery, parse_query
from .._select import LookupResult
from .._settings.settings import LOOKUP_ARGUMENTS, SETTINGS, conceal_key, conceal_key_argument, resolve_region
from .sdk import mocks_are_set, stack_config

__all__ = ["AwaitableGetImagesResult", "GetImagesResult", "get_images", "get_images_output"]

_E = TypeVar("_E", bound=UCloudImagesError)


# -- the result: a view over the library's LookupResult, with the wire names of a generated SDK --------------


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


# -- where the answer comes from --------------------------------------------------------------------------


_RUN_ERRORS: dict[type[UCloudImagesError], type[UCloudImagesError]] = {}


def _as_run_error(exc: _E) -> _E:
    """A copy of ``exc`` whose class is its own class that is also a :class:`pulumi.RunError` (same name,
    module, message and fields).

    Pulumi prints a ``RunError`` as its message alone, where any other exception gets a stack trace, and
    ``except NoImageFoundError`` keeps working.
    """
    cls = type(exc)
    if isinstance(exc, pulumi.RunError):
        return exc
    reported = _RUN_ERRORS.get(cls)
    if reported is None:
        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__,
                     "__reduce__": _reduce_as_library_error}
        reported = _RUN_ERRORS.setdefault(cls, type(cls.__name__, (cls, pulumi.RunError), namespace))
    copy = cast(_E, BaseException.__new__(reported, *exc.args))
    copy.__dict__.update(exc.__dict__)
    return copy


def _reduce_as_library_error(self: UCloudImagesError) -> tuple[Any, ...]:
    """Pickle as the library's own class: the reported one is not importable by its name."""
    library_class = type(self).__mro__[1]

    def swap(item: Any) -> Any:
        return library_class if item is type(self) else item

    rebuild, args, *state = cast(tuple[Any, ...], super(type(self), self).__reduce__())
    return (swap(rebuild), tuple(swap(arg) for arg in args), *state)


_T = TypeVar("_T")


def _reported(work: Callable[[], _T]) -> _T:
    try:
        return work()
    except UCloudImagesError as exc:
        raise _as_run_error(exc.with_traceback(None)) from None


def _query_of(values: Mapping[str, Any]) -> ImageQuery:
    return parse_query({name: values[name] for name in ImageQuery.model_fields})


def _no_filters(values: Mapping[str, Any]) -> bool:
    """No filter but ``region`` given: with ``lock``, the pin is taken by its name (in that region), with the
    query it was locked with."""
    return all(values[name] is None for name in ImageQuery.model_fields if name != "region")


def _by_name(query: ImageQuery | None) -> ImageQuery | None:
    """A pin taken by its name: nothing to compare, but a region given picks one of the pin's regions."""
    return None if query is None or query.region is None else ImageQuery(region=query.region)


def _warn(result: LookupResult) -> LookupResult:
    """Each warning of a lookup (an image past its end of life) as a Pulumi warning (stderr without an engine)."""
    for warning in result.warnings:
        pulumi.log.warn(warning)
    return result


def _concealed(values: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments with ``private_key`` held as a ``SecretStr`` (or an ``Output`` of one), in place.

    The key is never bound to a name of this module's frames, so neither a traceback nor a profiler finds it.
    """
    if values.get("private_key") is None or isinstance(values.get("private_key"), (str, SecretStr)):
        conceal_key_argument(values)
    else:
        values["private_key"] = pulumi.Output.from_input(values["private_key"]).apply(conceal_key)
    return values


def _settings_args(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given as arguments, and the program's stack config as the config source."""
    given = {name: values[name] for name in LOOKUP_ARGUMENTS if values.get(name) is not None}
    return {"config": stack_config(), **given}


def _invoke_args(query: ImageQuery) -> dict[str, Any]:
    """The validated query in Pulumi's camelCase (its serialization aliases), as a ``Mocks.call`` receives it."""
    return query.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def _refuse_ignored_lock_options(values: Mapping[str, Any]) -> None:
    """``verify`` and ``lockfile`` only mean something with ``lock``; settings mean nothing with ``lock`` unless
    ``verify`` makes the one API call. An option that would be silently ignored is refused instead."""
    if values["lock"] is None:
        given = [name for name in ("verify", "lockfile") if values[name] not in (None, False)]
        if given:
            raise InvalidQueryError(
                f"{' and '.join(given)} {'work' if len(given) > 1 else 'works'} only with lock=NAME (reading a pin "
                "from the lockfile); pass lock, or leave "
                f"{'them' if len(given) > 1 else 'it'} out.",
                field=given[0],
            )
    elif not values["verify"]:
        settings = [name for name in LOOKUP_ARGUMENTS if values.get(name) is not None]
        if settings:
            raise InvalidQueryError(
                f"With lock and without verify no API call is made, so {', '.join(settings)} would do nothing; "
                "leave them out, or pass verify=True to check the pinned image.",
                field=settings[0],
            )


def _look_up(
    query: ImageQuery | None,
    settings_args: Mapping[str, Any],
    lock: str | None,
    lockfile: str | os.PathLike[str] | None,
    verify: bool,
) -> LookupResult:
    """The lookup, or the pin ``lock`` names (``query`` ``None``: by its name alone, without comparing)."""
    if lock is None:
        assert query is not None
        return lookup_images(query, **settings_args)
    from .._lockfile.pins import locked_lookup

    return locked_lookup(
        lock, query, path=lockfile, verify=verify, settings_args=settings_args, configured=_configured_region
    )


def _configured_region() -> str | None:
    """The settings' region (stack config ``ucloud:region``, the environment, the profile): which region of a
    pin over several regions a program reads when it names none."""
    return resolve_region(config=stack_config())


def _pinned_query(lock: str, lockfile: str | os.PathLike[str] | None, region: str | None) -> ImageQuery:
    """The query pin ``lock`` was locked with, in the region it was resolved in (for a mocked invoke); its
    warnings (a revocation to come, a deprecation) are Pulumi warnings."""
    from .._lockfile.pins import read_locked

    read = read_locked(lock, lockfile, region, configured=_configured_region)
    for warning in read.warnings:
        pulumi.log.warn(warning)
    return read.pin.query.model_copy(update={"region": read.pin.region})


# -- the invoke answer (mocks, or a provider) -------------------------------------------------------------


def _image_of(value: Any) -> Any:
    """An image of a mocked answer, in any spelling (``imageId``, the API's ``ImageId``, ``image_id``)."""
    if not isinstance(value, Mapping):
        return value
    image = field_keys(Image, value)
    prices = image.get("price_set")
    if isinstance(prices, list):
        image["price_set"] = [field_keys(ImagePrice, p) if isinstance(p, Mapping) else p for p in prices]
    return image


def _from_answer(answer: Any, query: ImageQuery) -> LookupResult:
    """The invoke's answer as a :class:`LookupResult`: ``imageId`` is required; what a ``Mocks.call`` may leave
    out is filled in (``ids`` from the images, else the image ID; ``totalCount`` from ``ids``; the query's region)."""
    data: Any = {} if answer is None else answer
    if isinstance(data, Mapping):
        images = data.get("images")
        images = [_image_of(item) for item in images] if isinstance(images, list) else images
        listed = [item.get("image_id") for item in images or [] if isinstance(item, Mapping)]
        ids = data.get("ids")
        if ids is None:
            ids = listed or [data.get("imageId")]
        total = data.get("totalCount")
        data = {
            **data,
            "images": [] if images is None else images,
            "ids": ids,
            "totalCount": len(ids) if total is None and isinstance(ids, list) else total,
            "region": data.get("region") or query.region or "",
            "query": query,
            "warnings": data.get("warnings") or [],
        }
    try:
        return LookupResult.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the answer"
        raise _as_run_error(
            ResponseFormatError(
                f"The answer to {GET_IMAGES_TOKEN} is unusable at {where}: {error['msg']}; it must carry imageId "
                "and may carry ids, totalCount, images and region (a Mocks.call for this token must return them).",
                action=GET_IMAGES_TOKEN,
            )
        ) from None


# -- the functions ----------------------------------------------------------------------------------------


def get_images(
    *,
    # -- generated: query parameters (plain + settings), by scripts/codegen.py --write
    region: str | None = None,
    zone: str | None = None,
    project_id: str | None = None,
    image_type: str | None = None,
    os_type: str | None = None,
    func_type: str | None = None,
    image_id: str | None = None,
    ids: Sequence[str] | None = None,
    name_regex: str | None = None,
    os_name_regex: str | None = None,
    features: Sequence[str] | None = None,
    architecture: str | None = None,
    states: Sequence[str] | None = None,
    most_recent: bool | None = None,
    include_marketplace: bool | None = None,
    exclude_eol: bool | None = None,
    supported_until: str | date | None = None,
    gpu_types: Sequence[str] | None = None,
    scene_categories: Sequence[str] | None = None,
    vendor_regex: str | None = None,
    software_regex: str | None = None,
    prices: bool | None = None,
    public_key: str | None = None,
    private_key: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    profile: str | None = None,
    # -- end of generated parameters
    lock: str | None = None,
    lockfile: str | os.PathLike[str] | None = None,
    verify: bool = False,
    opts: pulumi.InvokeOptions | None = None,
) -> AwaitableGetImagesResult:
    """Find the one UCloud image that matches every filter, or raise.

    With ``lock`` and no filter, the pin of that selection is taken by its name alone; with filters too, they
    must be the query it was locked with. A chosen image past its end of life is returned with a warning
    (``pulumi.log.warn``, and in ``warnings``).
    """
    values = _concealed({
        # -- generated: arguments by name (query + settings), by scripts/codegen.py --write
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
        "public_key": public_key,
        "private_key": private_key,
        "base_url": base_url,
        "timeout": timeout,
        "profile": profile,
        # -- end of generated arguments
        "lock": lock, "lockfile": lockfile, "verify": verify,
    })
    del private_key
    _reported(lambda: _refuse_ignored_lock_options(values))
    opts = pulumi.InvokeOptions.merge(None, opts)
    query = _reported(lambda: _query_of(values))
    by_name = lock is not None and _no_filters(values)
    if mocks_are_set():
        if lock is not None and by_name:
            query = _reported(lambda: _pinned_query(lock, lockfile, region))
        answer = pulumi.runtime.invoke(GET_IMAGES_TOKEN, _invoke_args(query), opts=opts).value
        result = _from_answer(answer, query)
    else:
        settings_args = _settings_args(values)
        wanted = _by_name(query) if by_name else query
        result = _reported(lambda: _look_up(wanted, settings_args, lock, lockfile, verify))
    return AwaitableGetImagesResult(_warn(result))


def get_images_output(
    *,
    # -- generated: query parameters (input + settings), by scripts/codegen.py --write
    region: pulumi.Input[str | None] = None,
    zone: pulumi.Input[str | None] = None,
    project_id: pulumi.Input[str | None] = None,
    image_type: pulumi.Input[str | None] = None,
    os_type: pulumi.Input[str | None] = None,
    func_type: pulumi.Input[str | None] = None,
    image_id: pulumi.Input[str | None] = None,
    ids: pulumi.Input[Sequence[pulumi.Input[str]] | None] = None,
    name_regex: pulumi.Input[str | None] = None,
    os_name_regex: pulumi.Input[str | None] = None,
    features: pulumi.Input[Sequence[pulumi.Input[str]] | None] = None,
    architecture: pulumi.Input[str | None] = None,
    states: pulumi.Input[Sequence[pulumi.Input[str]] | None] = None,
    most_recent: pulumi.Input[bool | None] = None,
    include_marketplace: pulumi.Input[bool | None] = None,
    exclude_eol: pulumi.Input[bool | None] = None,
    supported_until: pulumi.Input[str | date | None] = None,
    gpu_types: pulumi.Input[Sequence[pulumi.Input[str]] | None] = None,
    scene_categories: pulumi.Input[Sequence[pulumi.Input[str]] | None] = None,
    vendor_regex: pulumi.Input[str | None] = None,
    software_regex: pulumi.Input[str | None] = None,
    prices: pulumi.Input[bool | None] = None,
    public_key: pulumi.Input[str | None] = None,
    private_key: pulumi.Input[str | None] = None,
    base_url: pulumi.Input[str | None] = None,
    timeout: pulumi.Input[float | None] = None,
    profile: pulumi.Input[str | None] = None,
    # -- end of generated parameters
    lock: str | None = None,
    lockfile: str | os.PathLike[str] | None = None,
    verify: bool = False,
    opts: pulumi.InvokeOptions | pulumi.InvokeOutputOptions | None = None,
) -> pulumi.Output[GetImagesResult]:
    """Like :func:`get_images`, with ``pulumi.Input`` arguments and an ``Output`` result.

    An unknown input (during preview) gives an unknown result; a secret input makes the result secret.
    """
    values = _concealed({
        # -- generated: arguments by name (query + settings), by scripts/codegen.py --write
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
        "public_key": public_key,
        "private_key": private_key,
        "base_url": base_url,
        "timeout": timeout,
        "profile": profile,
        # -- end of generated arguments
        "lock": lock, "lockfile": lockfile, "verify": verify,
    })
    del private_key
    _reported(lambda: _refuse_ignored_lock_options(values))
    output_opts = pulumi.InvokeOutputOptions.merge(None, opts)
    inputs = {name: values[name] for name in (*ImageQuery.model_fields, *LOOKUP_ARGUMENTS)}
    if all(_is_plain(value) for value in inputs.values()):
        _reported(lambda: _query_of(inputs))  # fail at the call

    if mocks_are_set():

        def invoke(resolved: dict[str, Any]) -> pulumi.Output[GetImagesResult]:
            query = _reported(lambda: _query_of(resolved))
            if lock is not None and _no_filters(resolved):
                query = _reported(lambda: _pinned_query(lock, lockfile, resolved["region"]))
            answer = pulumi.runtime.invoke_output(GET_IMAGES_TOKEN, _invoke_args(query), opts=output_opts)
            return answer.apply(lambda value: GetImagesResult(_warn(_from_answer(value, query))))

        return pulumi.Output.from_input(inputs).apply(invoke)

    def look_up(resolved: list[Any]) -> asyncio.Future[GetImagesResult]:
        arguments: dict[str, Any] = resolved[0]

        def work() -> GetImagesResult:
            query: ImageQuery | None = _query_of(arguments)
            if lock is not None and _no_filters(arguments):
                query = _by_name(query)
            return GetImagesResult(_warn(_look_up(query, _settings_args(arguments), lock, lockfile, verify)))

        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(None, functools.partial(context.run, _reported, work))

    return pulumi.Output.all(pulumi.Output.from_input(inputs), _dependencies(output_opts)).apply(look_up)


_SETTING_DOCS = {
    **{
        name: f"{SETTINGS[name].summary} When not given: config ucloud:{SETTINGS[name].config_key}, "
        f"{SETTINGS[name].variable}, then the UCloud CLI's profile files."
        for name in LOOKUP_ARGUMENTS
    },
    "lock": "Read the image pinned for this selection (NAME, or NAME@CHANNEL for a channel) from the lockfile "
    "instead of searching; without filters the pin is taken by its name alone (region picks one of its regions, "
    "else the configured region), with filters they must be the query it was locked with. A revoked image is an "
    "error; a revocation to come and a deprecation are warnings.",
    "lockfile": "The lockfile for lock. Default: the nearest ucloud-images.lock.json upwards.",
    "verify": "With lock, check with one API call that the pinned image still exists and is usable.",
    "opts": "Invoke options; used under mocks, where the invoke machinery carries the call.",
}


def _document(function: Callable[..., Any]) -> None:
    """Append one ``:param:`` line per argument, from the query model's field descriptions."""
    lines = [f":param {name}: {field.description}" for name, field in ImageQuery.model_fields.items()]
    lines += [f":param {name}: {text}" for name, text in _SETTING_DOCS.items()]
    function.__doc__ = f"{function.__doc__}\n\n" + "\n".join(f"    {line}" for line in lines)


_document(get_images)
_document(get_images_output)


def _is_plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    return not isinstance(value, pulumi.Output) and not asyncio.isfuture(value) and not asyncio.iscoroutine(value)


def _dependencies(opts: pulumi.InvokeOutputOptions) -> pulumi.Output[None]:
    """Known once every ``depends_on`` resource exists; unknown while one is still to be created (a preview).

    A custom resource exists once its ID is known. A component resource is waited for by its URN only: the SDK
    has no public way to list a component's children, so a lookup that must follow them names them itself.
    """
    if opts.depends_on is None:
        return pulumi.Output.from_input(None)

    def wait(resolved: Any) -> pulumi.Output[None]:
        resources = resolved if isinstance(resolved, (list, tuple)) else [resolved]
        markers = [r.id if isinstance(r, pulumi.CustomResource) else r.urn for r in resources]
        return pulumi.Output.all(*markers).apply(lambda _: None)

    depends_on: pulumi.Output[Any] = pulumi.Output.from_input(opts.depends_on)
    return depends_on.apply(wait)
