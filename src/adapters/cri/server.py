"""The gRPC server on a unix socket: safe binding, socket permissions, graceful stop."""

import os
import stat
import threading
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path

import grpc
import structlog

from adapters.cri.generated import api_pb2_grpc
from adapters.cri.interceptor import CallWrapper
from adapters.cri.poll_pool import PollPool
from adapters.host.unix_sockets import prepare_socket_path
from ports.metrics import RpcObserver
from ports.oci_runtime import GRPC_MESSAGE_LIMIT

_log = structlog.get_logger("pycrio.server")

# The kubelet sends image configs and container lists that can exceed gRPC's 4 MiB default (cri-o uses 16).
MAX_MESSAGE_BYTES = GRPC_MESSAGE_LIMIT


class _WrappingRegistration:
    """The server as the generated add_*Servicer_to_server functions see it: every handler they add is
    wrapped (adapters/cri/interceptor.py) on its way in, once."""

    def __init__(self, server: grpc.Server, wrapper: CallWrapper) -> None:
        self._server = server
        self._wrapper = wrapper

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        wrapped = {
            name: self._wrapper.wrap(handler, f"/{service}/{name}") for name, handler in handlers.items()
        }
        self._server.add_registered_method_handlers(service, wrapped)

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGeneric(handler, self._wrapper) for handler in handlers)
        )


class _WrappedGeneric(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generic handler (grpc's path for a method it has no registration of) with wrapped handlers, each
    wrapped at its first call and kept."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrapper: CallWrapper) -> None:
        self._inner = inner
        self._wrapper = wrapper
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method: str = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None  # not kept: a client may send any number of names
            wrapped = self._wrapped[method] = self._wrapper.wrap(handler, method)
        return wrapped


class CriServer:
    def __init__(
        self,
        socket_path: Path,
        socket_mode: int,
        runtime_servicer: api_pb2_grpc.RuntimeServiceServicer,
        image_servicer: api_pb2_grpc.ImageServiceServicer,
        max_workers: int,
        observers: Sequence[RpcObserver] = (),
        max_streams: int = 64,
        max_connections: int = 512,
        max_poll_workers: int = 16,
    ) -> None:
        self._socket_path = socket_path
        self._socket_mode = socket_mode
        # grpcio's sync server runs an RPC on its method's executor, and a call holds its thread for as long
        # as it runs: a stream while it is open, a PullImage while the registry is slow, a StopContainer for
        # its grace period. The main pool has room for `max_streams` streams on top of `max_workers`, and the
        # call wrapper refuses a stream past `max_streams`: open streams can never take the threads that
        # unary RPCs need. The kubelet's polls (POLL_METHODS: answered from memory, never waiting on another
        # call) run on a pool of their own (overflowing into the main one, adapters/cri/poll_pool.py): a node
        # draining 100 pods, or 100 pulls from a stalled registry, cannot starve the Status and relist calls
        # the kubelet's node health depends on.
        main_pool = futures.ThreadPoolExecutor(
            max_workers=max_workers + max_streams, thread_name_prefix="cri"
        )
        self._poll_pool = PollPool(max_poll_workers, main_pool, thread_name_prefix="cri-poll")
        self._server = grpc.server(
            main_pool,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # Connections cost no thread (grpc core polls them) but a file each: without a cap, a client
                # that opens connections and sends nothing runs the daemon out of files.
                ("grpc.max_allowed_incoming_connections", max_connections),
            ],
        )
        self._stopped = threading.Event()
        wrapping = _WrappingRegistration(self._server, CallWrapper(observers, max_streams, self._poll_pool))
        api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime_servicer, wrapping)
        api_pb2_grpc.add_ImageServiceServicer_to_server(image_servicer, wrapping)

    def start(self) -> None:
        prepare_socket_path(self._socket_path)
        # The socket is born with its final mode: a client that sees it never sees other permissions.
        old_umask = os.umask(~self._socket_mode & 0o777)
        try:
            self._server.add_insecure_port(f"unix://{self._socket_path}")
            self._server.start()
        finally:
            os.umask(old_umask)
        os.chmod(self._socket_path, self._socket_mode)
        _log.info("serving CRI", socket=str(self._socket_path))

    def wait(self) -> None:
        """Until stop() has finished. grpc's wait_for_termination would wake every 0.1 s to check."""
        self._stopped.wait()

    def stop(self, grace: float) -> None:
        """Refuse new RPCs, let in-flight ones finish within `grace` seconds, then remove the socket."""
        try:
            self._server.stop(grace).wait()
            self._poll_pool.shutdown(wait=False)
            try:
                if stat.S_ISSOCK(self._socket_path.lstat().st_mode):
                    self._socket_path.unlink()
            except FileNotFoundError:
                pass
            _log.info("stopped serving CRI", socket=str(self._socket_path))
        finally:
            self._stopped.set()
