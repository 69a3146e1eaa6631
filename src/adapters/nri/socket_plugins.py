"""NriPlugins over NRI's unix socket: accept, wait for RegisterPlugin, Configure, then hand the plugin to
the domain. Every call to a plugin has the request timeout; a plugin past it is disconnected, so a hung
plugin costs one timeout, never a frozen daemon."""

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
from google.protobuf.message import DecodeError, Message

from adapters.host.unix_sockets import prepare_socket_path
from adapters.nri import convert, plugin_files
from adapters.nri.generated import nri_pb2 as pb
from adapters.nri.ttrpc_mux import MESSAGE_MAX, CallFailed, MuxConnection
from adapters.process import runner
from domain.errors import InvalidArgument, PycrioError, Unavailable
from domain.nri import (
    NRI_API_VERSION,
    SUPPORTED_EVENTS,
    NriContainer,
    NriEvent,
    NriPod,
    NriReply,
    NriRequest,
    NriUpdate,
    subscribed_events,
)
from ports.nri import NriPlugin, UpdateHandler

_log = structlog.get_logger("pycrio.nri")
PLUGIN_SERVICE = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME_SERVICE = "nri.pkg.api.v1alpha1.Runtime"
MAX_PLUGINS = 32  # connections at once, registered or not
GRPC_INVALID_ARGUMENT = 3
GRPC_UNIMPLEMENTED = 12

# event -> (method, request message class, response message class)
_METHODS: dict[NriEvent, tuple[str, type[Message], type[Message]]] = {
    NriEvent.RUN_POD_SANDBOX: ("RunPodSandbox", pb.RunPodSandboxRequest, pb.Empty),
    NriEvent.UPDATE_POD_SANDBOX: ("UpdatePodSandbox", pb.UpdatePodSandboxRequest, pb.Empty),
    NriEvent.POST_UPDATE_POD_SANDBOX: ("PostUpdatePodSandbox", pb.PostUpdatePodSandboxRequest, pb.Empty),
    NriEvent.STOP_POD_SANDBOX: ("StopPodSandbox", pb.StopPodSandboxRequest, pb.Empty),
    NriEvent.REMOVE_POD_SANDBOX: ("RemovePodSandbox", pb.RemovePodSandboxRequest, pb.Empty),
    NriEvent.CREATE_CONTAINER: ("CreateContainer", pb.CreateContainerRequest, pb.CreateContainerResponse),
    NriEvent.POST_CREATE_CONTAINER: ("PostCreateContainer", pb.PostCreateContainerRequest, pb.Empty),
    NriEvent.START_CONTAINER: ("StartContainer", pb.StartContainerRequest, pb.Empty),
    NriEvent.POST_START_CONTAINER: ("PostStartContainer", pb.PostStartContainerRequest, pb.Empty),
    NriEvent.UPDATE_CONTAINER: ("UpdateContainer", pb.UpdateContainerRequest, pb.UpdateContainerResponse),
    NriEvent.POST_UPDATE_CONTAINER: ("PostUpdateContainer", pb.PostUpdateContainerRequest, pb.Empty),
    NriEvent.STOP_CONTAINER: ("StopContainer", pb.StopContainerRequest, pb.StopContainerResponse),
    NriEvent.REMOVE_CONTAINER: ("RemoveContainer", pb.RemoveContainerRequest, pb.Empty),
    NriEvent.VALIDATE_CONTAINER_ADJUSTMENT: (
        "ValidateContainerAdjustment",
        pb.ValidateContainerAdjustmentRequest,
        pb.ValidateContainerAdjustmentResponse,
    ),
}


def _request_to_pb(request: NriRequest, cls: type[Message]) -> Message:
    if request.event is NriEvent.VALIDATE_CONTAINER_ADJUSTMENT:
        return convert.validation_to_pb(request)
    message = cls()
    message.pod.CopyFrom(convert.pod_to_pb(request.pod))  # type: ignore[attr-defined]
    if request.container is not None:
        message.container.CopyFrom(convert.container_to_pb(request.container))  # type: ignore[attr-defined]
    if request.resources is not None:
        convert.resources_to_pb(request.resources, message.linux_resources)  # type: ignore[attr-defined]
    if request.overhead is not None:
        convert.resources_to_pb(request.overhead, message.overhead_linux_resources)  # type: ignore[attr-defined]
    return message


class SocketNriPlugin:
    """One connected plugin."""

    def __init__(self, connection: MuxConnection, request_timeout: float) -> None:
        self._conn = connection
        self._timeout = request_timeout
        self._name = ""
        self._events: frozenset[NriEvent] = frozenset()
        self.registered = threading.Event()
        self.registration_error = ""

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def close(self) -> None:
        self._conn.close()

    def subscribed(self, event: NriEvent) -> bool:
        return event in self._events

    def register(self, name: str, index: str) -> None:
        if not name or "/" in name or len(name) > 128:
            raise InvalidArgument(f"plugin_name: {name!r} is not a plugin name")
        if len(index) != 2 or not index.isdigit():
            raise InvalidArgument(f"plugin_idx: {index!r} is not two digits")
        self._name = f"{index}-{name}"
        self.registered.set()

    def _call(self, method: str, request: Message, reply: type[Message]) -> Message:
        try:
            data = self._conn.call(PLUGIN_SERVICE, method, request.SerializeToString(), self._timeout)
            return reply.FromString(data)
        except TimeoutError:
            self.close()
            raise Unavailable(
                f"NRI plugin {self._name} did not answer {method} within {self._timeout:g}s; disconnected"
            ) from None
        except CallFailed as err:
            raise Unavailable(f"NRI plugin {self._name} failed {method}: {err}") from None
        except (ConnectionError, DecodeError) as err:
            self.close()
            raise Unavailable(f"NRI plugin {self._name} is gone ({method}): {err}") from None

    def configure(self, config: str, registration_timeout: float, version: str) -> None:
        reply = self._call(
            "Configure",
            pb.ConfigureRequest(
                config=config,
                runtime_name="pycrio",
                runtime_version=version,
                registration_timeout=int(registration_timeout * 1000),
                request_timeout=int(self._timeout * 1000),
                NRI_version=NRI_API_VERSION,
            ),
            pb.ConfigureResponse,
        )
        self._events = subscribed_events(reply.events) & SUPPORTED_EVENTS  # type: ignore[attr-defined]

    def call(self, request: NriRequest) -> NriReply:
        method, request_cls, reply_cls = _METHODS[request.event]
        reply = self._call(method, _request_to_pb(request, request_cls), reply_cls)
        return convert.reply_from_pb(reply, self._name)

    def synchronize(self, pods: Sequence[NriPod], containers: Sequence[NriContainer]) -> list[NriUpdate]:
        """Everything in one request when it fits ttrpc's message limit, else in parts marked `more` (the
        plugin answers each but the last with `more` and no updates, as upstream's split synchronization)."""
        parts = sync_parts(
            [convert.pod_to_pb(p) for p in pods], [convert.container_to_pb(c) for c in containers]
        )
        for number, part in enumerate(parts):
            part.more = number < len(parts) - 1
            reply = self._call("Synchronize", part, pb.SynchronizeResponse)
            convert.refuse_unknown_fields(reply, f"NRI plugin {self._name}")
            if part.more and (reply.update or not reply.more):  # type: ignore[attr-defined]
                self.close()
                raise Unavailable(f"NRI plugin {self._name} does not handle a synchronization in parts")
        return list(convert.updates_from_pb(reply.update))  # type: ignore[attr-defined]


def sync_parts(
    pods: list[pb.PodSandbox], containers: list[pb.Container], limit: int = MESSAGE_MAX // 2
) -> list[pb.SynchronizeRequest]:
    """Pods, then containers, packed in order into requests of at most `limit` bytes (or one item)."""
    parts = [pb.SynchronizeRequest()]
    size = 0
    for field, items in (("pods", pods), ("containers", containers)):
        for item in items:
            item_size = item.ByteSize() + 8  # its tag and length
            if size and size + item_size > limit:
                parts.append(pb.SynchronizeRequest())
                size = 0
            getattr(parts[-1], field).append(item)
            size += item_size
    return parts


class SocketNriPlugins:
    def __init__(
        self,
        socket_path: str,
        registration_timeout: float,
        request_timeout: float,
        runtime_version: str,
        config_dir: str = "",
        plugin_dir: str = "",
    ) -> None:
        self._path = Path(socket_path)
        self._registration_timeout = registration_timeout
        self._request_timeout = request_timeout
        self._version = runtime_version
        self._config_dir = config_dir
        self._plugin_dir = plugin_dir
        self._launched: list[subprocess.Popen[bytes]] = []
        self._listener: socket.socket | None = None
        self._plugins: set[SocketNriPlugin] = set()
        self._lock = threading.Lock()
        self._on_connect: Callable[[NriPlugin], None] = lambda plugin: None
        self._on_update: UpdateHandler = lambda plugin, updates, evictions: []

    def start(self, on_connect: Callable[[NriPlugin], None], on_update: UpdateHandler) -> None:
        self._on_connect, self._on_update = on_connect, on_update
        prepare_socket_path(self._path, "nri.socket_path")  # a live one (containerd's, cri-o's) is refused
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        listener.bind(str(self._path))
        os.chmod(self._path, 0o600)
        listener.listen(MAX_PLUGINS)
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), name="nri-accept", daemon=True).start()
        _log.info("NRI enabled", socket=str(self._path), api=NRI_API_VERSION)
        for index, name, path in plugin_files.plugin_executables(self._plugin_dir)[:MAX_PLUGINS]:
            try:
                process, sock = plugin_files.launch(index, name, path)
            except OSError as err:
                _log.warning("NRI plugin could not be started", plugin=str(path), error=str(err))
                continue
            self._launched.append(process)
            _log.info("NRI plugin started", plugin=str(path), pid=process.pid)
            threading.Thread(target=self._welcome, args=(sock,), name="nri-register", daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            if self._path.is_socket():
                self._path.unlink()
        with self._lock:
            plugins = list(self._plugins)
        for plugin in plugins:
            plugin.close()
        launched, self._launched = self._launched, []
        for process in launched:  # upstream kills the plugins it started
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                runner.wait(process, 10.0)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._plugins = {p for p in self._plugins if not p.closed}
                crowded = len(self._plugins) >= MAX_PLUGINS
            if crowded:
                _log.warning("NRI plugin refused: too many connections", limit=MAX_PLUGINS)
                sock.close()
                continue
            threading.Thread(target=self._welcome, args=(sock,), name="nri-register", daemon=True).start()

    def _welcome(self, sock: socket.socket) -> None:
        holder: list[SocketNriPlugin] = []
        connection = MuxConnection(sock, lambda s, m, p: self._serve(holder[0], s, m, p), lambda: None)
        plugin = SocketNriPlugin(connection, self._request_timeout)
        holder.append(plugin)
        with self._lock:
            self._plugins.add(plugin)
        connection.start()
        try:
            if not plugin.registered.wait(self._registration_timeout):
                raise Unavailable(
                    plugin.registration_error or f"no RegisterPlugin within {self._registration_timeout:g}s"
                )
            config = plugin_files.read_plugin_config(self._config_dir, plugin.name)
            plugin.configure(config, self._registration_timeout, self._version)
            self._on_connect(plugin)
        except PycrioError as err:
            _log.warning("NRI plugin refused", plugin=plugin.name or "(unregistered)", error=str(err))
            plugin.close()

    def _serve(
        self, plugin: SocketNriPlugin, service: str, method: str, payload: bytes
    ) -> tuple[int, str, bytes]:
        if service != RUNTIME_SERVICE:
            return GRPC_UNIMPLEMENTED, f"service {service} not served", b""
        try:
            if method == "RegisterPlugin":
                request = pb.RegisterPluginRequest.FromString(payload)
                try:
                    plugin.register(request.plugin_name, request.plugin_idx)
                except InvalidArgument as err:
                    plugin.registration_error = str(err)
                    raise
                _log.info(
                    "NRI plugin registered", plugin=plugin.name, nri_version=request.NRI_version or "unknown"
                )
                return 0, "", pb.Empty().SerializeToString()
            if method == "UpdateContainers":
                if not plugin.registered.is_set():
                    return GRPC_INVALID_ARGUMENT, "plugin is not registered", b""
                updates = pb.UpdateContainersRequest.FromString(payload)
                convert.refuse_unknown_fields(updates, f"NRI plugin {plugin.name}")
                failed = self._on_update(
                    plugin.name,
                    convert.updates_from_pb(updates.update),
                    convert.evictions_from_pb(updates.evict),
                )
                reply = pb.UpdateContainersResponse(failed=[convert.update_to_pb(u) for u in failed])
                return 0, "", reply.SerializeToString()
        except DecodeError as err:
            return GRPC_INVALID_ARGUMENT, f"{method}: {err}", b""
        except PycrioError as err:
            return GRPC_INVALID_ARGUMENT, str(err), b""
        return GRPC_UNIMPLEMENTED, f"method {method} not served", b""
