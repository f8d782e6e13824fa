"""The Pulumi provider plugin ``pulumi-resource-ucloud-images``: getImages and PinnedImage for every language.

:mod:`~pulumi_ucloud_images._pulumi.plugin_server` runs the process (the port, the schema) and loads this module behind
its first answer.
The provider serves the shipped ``schema.json`` (what :mod:`~pulumi_ucloud_images._pulumi.schema` renders), checks and
stores provider
config, answers ``ucloud-images:index:getImages`` with the lookup of the Python API, and manages
``ucloud-images:index:PinnedImage`` with the logic of the Python dynamic resource.

Settings resolve per call through the core's :func:`~pulumi_ucloud_images._settings.scope.settings_for`, with the
provider config where the
Python API reads the ``ucloud:`` stack config: provider config, then the ``UCLOUD_*`` environment, then the
UCloud CLI's profile files. Invalid input comes back as check failures naming the property in camelCase;
lookup and API failures as one sentence. The private key is held as a :class:`~pydantic.SecretStr`, marked
secret in the checked config (so Pulumi encrypts it in state), and appears in no answer, error or log line.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from pulumi.provider.experimental import server
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.provider import (
    CheckFailure,
    CheckRequest,
    CheckResponse,
    ConfigureRequest,
    ConfigureResponse,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    DiffRequest,
    DiffResponse,
    GetSchemaRequest,
    GetSchemaResponse,
    InvokeRequest,
    InvokeResponse,
    PropertyDiff,
    PropertyDiffKind,
    Provider,
    ReadRequest,
    ReadResponse,
    UpdateRequest,
    UpdateResponse,
)
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, provider_pb2_grpc
from pydantic import SecretStr

from .._errors import InvalidQueryError, ProviderError, SettingsNotKnownError, UCloudImagesError
from .._lookup import lookup_images
from .._naming import GET_IMAGES_TOKEN, PACKAGE_NAME, PINNED_IMAGE_TOKEN, camel
from .._query import ImageQuery
from .._settings.scope import settings_for
from .._settings.settings import Face, endpoint_problem, has_userinfo, resolve_region, timeout_problem, userinfo_message
from .._version import __version__
from .pin_service import LOCK, LOCKFILE, PinService, is_unknown
from .property_values import PLUGIN_NAMING, has_secret, parse_arguments, pin_plain, pin_wire, plain, property_name, wire
from .schema import CONFIG_KEYS, SERVED_SCHEMA_PATH
from .sdk import UNKNOWN

__all__ = ["EngineLog", "UCloudImagesProvider", "handler", "parse_arguments"]

_PRIVATE_KEY = CONFIG_KEYS["private_key"]
_BASE_URL = CONFIG_KEYS["base_url"]
_TIMEOUT = CONFIG_KEYS["timeout"]
_SETTING_BY_KEY = {key: name for name, key in CONFIG_KEYS.items()}
# Keys the engine itself may add to a provider's inputs; they are not settings and pass through unchecked.
_ENGINE_KEYS = frozenset({"version", "pluginDownloadURL", "pluginChecksums", "parameterization"})
_CONFIG_PREFIX = f"{PACKAGE_NAME}:config:"
_T = TypeVar("_T")


def _config_problem(key: str, value: PropertyValue) -> str | None:
    """One sentence on what is wrong with a provider setting, or None."""
    if key not in _SETTING_BY_KEY:
        close = difflib.get_close_matches(key, list(_SETTING_BY_KEY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"Unknown provider setting {key!r}{hint}; the settings are {', '.join(_SETTING_BY_KEY)}."
    inner = value.value
    if inner is None or is_unknown(plain(value)):
        return None
    if key == _TIMEOUT:  # a number, or its text (stack config is text), as ucloud:timeout is
        problem = timeout_problem(inner) if isinstance(inner, (str, int, float)) and inner != "" else None
        return None if problem is None else f"Invalid {key} {inner!r}: {problem}."
    if not isinstance(inner, str):
        return f"Invalid {key}: must be a string, not {value.type.value.lower()}."
    problem = endpoint_problem(inner) if key == _BASE_URL and inner else None
    if problem is None:
        return None
    return userinfo_message(key) if has_userinfo(inner) else f"Invalid {key} {inner!r}: {problem}."


PLUGIN_FACE = Face(
    arguments={"region": "the region input", "project_id": "the projectId input"},
    config={
        name: f"the provider setting {key} (Pulumi config {PACKAGE_NAME}:{key})" for name, key in CONFIG_KEYS.items()
    },
    names=CONFIG_KEYS,
)
"""How the plugin's messages name the settings' sources: its inputs hold only the query, its config its own."""


Warn = Callable[[str, str], Awaitable[None]]
"""Send a warning to the user: ``(message, urn)``, the URN empty when no resource is concerned (an invoke)."""


def _warn_now(message: str) -> None:
    """A warning met inside a blocking call (a lockfile pin's, at create): to stderr, which the engine shows."""
    sys.stderr.write(f"warning: {message}\n")


async def _warn_on_stderr(message: str, urn: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


class EngineLog:
    """Warnings to the engine's Log service (as any provider's diagnostics), on a channel opened at first use.

    The provider protocol's Check and Invoke answers carry no warnings; this is how a provider warns. A
    warning that cannot be delivered goes to stderr (which the engine shows as the plugin's output).
    """

    def __init__(self, address: str) -> None:
        self._address = address
        self._stub: Any = None

    async def warn(self, message: str, urn: str) -> None:
        try:
            if self._stub is None:
                self._stub = engine_pb2_grpc.EngineStub(grpc.aio.insecure_channel(self._address))
            await self._stub.Log(engine_pb2.LogRequest(severity=engine_pb2.WARNING, message=message, urn=urn))
        except (grpc.RpcError, OSError, ValueError):
            await _warn_on_stderr(message, urn)


class UCloudImagesProvider(Provider):
    """Serves the schema, checks and stores provider config, answers getImages and manages PinnedImage.

    ``warn`` delivers warnings (a chosen image past its end of life); the plugin sends them to the engine.
    """

    def __init__(self, warn: Warn | None = None) -> None:
        self._warn: Warn = warn or _warn_on_stderr
        self._schema = SERVED_SCHEMA_PATH.read_text(encoding="utf-8")
        self._config: dict[str, str] = {}
        self._private_key: SecretStr | None = None
        self._unknown: set[str] = set()
        self._pins: PinService | None = None

    def __repr__(self) -> str:
        return f"UCloudImagesProvider(settings={sorted({*self._config, *self._unknown})!r})"

    # -- schema and config -------------------------------------------------------------------------------

    async def get_schema(self, request: GetSchemaRequest) -> GetSchemaResponse:
        return GetSchemaResponse(schema=self._schema)

    async def check_config(self, request: CheckRequest) -> CheckResponse:
        inputs: dict[str, PropertyValue] = {}
        failures: list[CheckFailure] = []
        for key, value in request.new_inputs.items():
            problem = None if key in _ENGINE_KEYS or key.startswith("__") else _config_problem(key, value)
            if problem is not None:
                failures.append(CheckFailure(key, problem))
            else:
                inputs[key] = value.with_secret(True) if key == _PRIVATE_KEY else value
        return CheckResponse(inputs=inputs, failures=failures)

    async def configure(self, request: ConfigureRequest) -> ConfigureResponse:
        values: dict[str, PropertyValue] = dict(request.args)
        if not values:  # engines that send only the flat variables map
            values = {
                key.removeprefix(_CONFIG_PREFIX): PropertyValue(text)
                for key, text in request.variables.items()
                if key.startswith(_CONFIG_PREFIX)
            }
        config: dict[str, str] = {}
        unknown: set[str] = set()
        private_key: SecretStr | None = None
        for key, value in values.items():
            if key not in _SETTING_BY_KEY:
                continue  # engine keys; unknown settings were reported by CheckConfig
            if is_unknown(plain(value)):
                unknown.add(key)
            elif key == _TIMEOUT and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
                config[key] = repr(value.value)  # the settings read config as text
            elif isinstance(value.value, str) and value.value:
                if key == _PRIVATE_KEY:
                    private_key = SecretStr(value.value)
                else:
                    config[key] = value.value
        self._config, self._unknown, self._private_key = config, unknown, private_key
        return ConfigureResponse(accept_secrets=True, supports_preview=True)

    def _setting(self, key: str) -> str | None:
        """A setting by its config key, ``ucloud:publicKey`` or ``publicKey``; ``UNKNOWN`` while not known yet."""
        name = key.partition(":")[2] or key
        if name in self._unknown:
            return UNKNOWN
        if name == _PRIVATE_KEY:
            return None if self._private_key is None else self._private_key.get_secret_value()
        return self._config.get(name)

    def _config_value(self, key: str) -> str | None:
        """The ``config`` source of the settings for a lookup, which needs every setting known."""
        if self._unknown:
            names = ", ".join(sorted(self._unknown))
            raise SettingsNotKnownError(f"Provider settings not known yet: {names}; lookups need known settings.")
        return self._setting(key)

    async def _run(self, call: Callable[[], _T]) -> _T:
        """Run a blocking lookup off the event loop; its errors leave as they are, already in the plugin's words."""
        try:
            return await asyncio.to_thread(call)
        except UCloudImagesError as exc:
            raise exc.with_traceback(None) from None

    # -- getImages -----------------------------------------------------------------------------------

    async def invoke(self, request: InvokeRequest) -> InvokeResponse:
        if request.tok != GET_IMAGES_TOKEN:
            raise ProviderError(f"Unknown function {request.tok!r}; this provider serves {GET_IMAGES_TOKEN}.")
        lock_args = {key: plain(value) for key, value in request.args.items() if key in (LOCK, LOCKFILE)}
        args = {key: value for key, value in request.args.items() if key not in lock_args}
        query, failures = parse_arguments(args)
        if query is None:
            return InvokeResponse(failures=failures)
        if lock_args:
            return await self._invoke_locked(lock_args, query, request)
        try:
            settings = settings_for(query, config=self._config_value, face=PLUGIN_FACE)
        except InvalidQueryError as exc:
            if exc.field not in PLUGIN_NAMING:
                raise exc.with_traceback(None) from None
            return InvokeResponse(failures=[CheckFailure(PLUGIN_NAMING[exc.field], str(exc))])
        result = await self._run(functools.partial(lookup_images, query, settings=settings, naming=PLUGIN_NAMING))
        for warning in result.warnings:
            await self._warn(f"{GET_IMAGES_TOKEN}: {warning}", "")
        return InvokeResponse(return_value=wire(result.model_dump(mode="json"), secret=has_secret(request.args)))

    async def _invoke_locked(
        self, lock_args: dict[str, Any], query: ImageQuery, request: InvokeRequest
    ) -> InvokeResponse:
        """getImages with ``lock``: the pin read from the lockfile (the plugin's working directory is the
        project's), no API call; a filter given besides ``region`` must be the locked query."""
        ref, path = lock_args.get(LOCK), lock_args.get(LOCKFILE)
        if not isinstance(ref, str) or not isinstance(path, (str, type(None))):
            return InvokeResponse(failures=[CheckFailure(
                LOCK if not isinstance(ref, str) else LOCKFILE,
                "lock must be NAME or NAME@CHANNEL (a string), and lockfile a path; lockfile works only with lock.",
            )])
        from .._lockfile.pins import locked_lookup

        given = None if query == ImageQuery() else query

        def configured() -> str | None:
            return resolve_region(config=self._config_value, face=PLUGIN_FACE)

        result = await self._run(
            functools.partial(locked_lookup, ref, given, path=path, configured=configured)
        )
        for warning in result.warnings:
            await self._warn(f"{GET_IMAGES_TOKEN}: {warning}", "")
        return InvokeResponse(return_value=wire(result.model_dump(mode="json"), secret=has_secret(request.args)))

    # -- PinnedImage: the pin service, spoken in the schema's names -----------------------------------------

    def _pinned(self, resource_type: str) -> PinService:
        if resource_type != PINNED_IMAGE_TOKEN:
            raise ProviderError(f"Unknown resource type {resource_type!r}; this provider has {PINNED_IMAGE_TOKEN}.")
        if self._pins is None:
            self._pins = PinService(self._setting, face=PLUGIN_FACE, naming=PLUGIN_NAMING, warn=_warn_now)
        return self._pins

    async def check(self, request: CheckRequest) -> CheckResponse:
        pins = self._pinned(request.type)
        olds, news = pin_plain(request.old_inputs), pin_plain(request.new_inputs)
        checked = await self._run(lambda: pins.check(olds, news))
        for warning in checked.warnings:
            await self._warn(warning, request.urn)
        failures = [CheckFailure(property_name(f.property), f.reason) for f in checked.failures]
        return CheckResponse(inputs=pin_wire(checked.inputs, request.new_inputs), failures=failures)

    async def diff(self, request: DiffRequest) -> DiffResponse:
        pins = self._pinned(request.type)
        olds, news = pin_plain(request.old_state), pin_plain(request.new_inputs)
        replaces = [camel(name) for name in await self._run(lambda: pins.diff(olds, news))]
        return DiffResponse(
            changes=bool(replaces),
            replaces=replaces,
            diffs=replaces,
            delete_before_replace=False,
            detailed_diff={  # the SDK always declares a detailed diff, so it must name every replacement
                key: PropertyDiff(PropertyDiffKind.UPDATE_REPLACE, input_diff=key in request.new_inputs)
                for key in replaces
            },
        )

    async def create(self, request: CreateRequest) -> CreateResponse:
        pins = self._pinned(request.type)
        props = pin_plain(request.properties)
        if request.preview:
            return CreateResponse(resource_id="", properties=pin_wire(pins.preview(props), request.properties))
        outs = await self._run(lambda: pins.create(props))
        return CreateResponse(resource_id=str(outs["image_id"]), properties=pin_wire(outs, request.properties))

    async def read(self, request: ReadRequest) -> ReadResponse:
        pins = self._pinned(request.type)
        props = pin_plain(request.properties)
        outs = await self._run(lambda: pins.read(request.resource_id, props))
        return ReadResponse(
            resource_id=request.resource_id,
            properties=pin_wire(outs, request.properties),
            inputs=request.inputs,
        )

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        pins = self._pinned(request.type)
        news = pin_plain(request.news)
        if request.preview:
            return UpdateResponse(properties=pin_wire(pins.preview(news), request.news))
        outs = await self._run(lambda: pins.create(news))  # re-resolve: diff asks for a replacement, so rarely met
        return UpdateResponse(properties=pin_wire(outs, request.news))

    async def delete(self, request: DeleteRequest) -> None:
        self._pinned(request.type)  # a pin is state only: nothing to delete in the cloud


class _Servicer(server.ProviderServicer):
    """The SDK's servicer, except that a lookup error reaches the user as its own sentence.

    The SDK re-raises every exception as a new one carrying the traceback; a :class:`UCloudImagesError`
    is an answer rather than a crash, so the call ends with its message alone.
    """

    async def Invoke(self, request: Any, context: Any) -> Any:
        return await _answer(super().Invoke(request, context), context)

    async def Check(self, request: Any, context: Any) -> Any:
        return await _answer(super().Check(request, context), context)

    async def Diff(self, request: Any, context: Any) -> Any:
        return await _answer(super().Diff(request, context), context)

    async def Create(self, request: Any, context: Any) -> Any:
        return await _answer(super().Create(request, context), context)

    async def Read(self, request: Any, context: Any) -> Any:
        return await _answer(super().Read(request, context), context)

    async def Update(self, request: Any, context: Any) -> Any:
        return await _answer(super().Update(request, context), context)

    async def Delete(self, request: Any, context: Any) -> Any:
        return await _answer(super().Delete(request, context), context)



async def _answer(call: Awaitable[Any], context: Any) -> Any:
    try:
        return await call
    except Exception as exc:
        cause = exc if isinstance(exc, UCloudImagesError) else exc.__context__
        if isinstance(cause, UCloudImagesError):
            await context.abort(grpc.StatusCode.UNKNOWN, str(cause))
        raise


class _Handlers:
    """Takes the handler that the generated ``add_ResourceProviderServicer_to_server`` gives a server."""

    def __init__(self) -> None:
        self.handlers: tuple[grpc.GenericRpcHandler, ...] = ()

    def add_generic_rpc_handlers(self, handlers: tuple[grpc.GenericRpcHandler, ...]) -> None:
        self.handlers += tuple(handlers)

    def add_registered_method_handlers(self, service: str, method_handlers: dict[str, Any]) -> None:
        """Some SDK releases' generated code also registers each method by name (a gRPC server's
        optimisation); the generic handler above already serves every one of them."""


def handler(engine: str) -> grpc.GenericRpcHandler:
    """The plugin's methods as one gRPC handler: the SDK's servicer around :class:`UCloudImagesProvider`.

    :mod:`~pulumi_ucloud_images._pulumi.plugin_server` serves it once loaded; ``engine`` is the engine's address, where
    warnings go.
    """
    servicer = _Servicer([], __version__, UCloudImagesProvider(warn=EngineLog(engine).warn), engine_address=engine)
    collected = _Handlers()
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(servicer, collected)
    (only,) = collected.handlers
    return only
