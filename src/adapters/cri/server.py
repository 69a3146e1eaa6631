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
from adapters.cri.interceptor import CriInterceptor
from adapters.host.unix_sockets import prepare_socket_path
from ports.metrics import RpcObserver
from ports.oci_runtime import GRPC_MESSAGE_LIMIT

_log = structlog.get_logger("pycrio.server")

# The kubelet sends image configs and container lists that can exceed gRPC's 4 MiB default (cri-o uses 16).
MAX_MESSAGE_BYTES = GRPC_MESSAGE_LIMIT


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
    ) -> None:
        self._socket_path = socket_path
        self._socket_mode = socket_mode
        # grpcio's sync server runs every RPC on one executor, and a stream holds its thread for as long as
        # it is open. The pool has room for `max_streams` streams on top of `max_workers`, and the
        # interceptor refuses a stream past `max_streams`: open streams can never take the threads that
        # unary RPCs need. (An asyncio server would need every servicer rewritten; grpcio cannot give
        # methods executors of their own.)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers + max_streams, thread_name_prefix="cri"),
            interceptors=[CriInterceptor(observers, max_streams)],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # Connections cost no thread (grpc core polls them) but a file each: without a cap, a client
                # that opens connections and sends nothing runs the daemon out of files.
                ("grpc.max_allowed_incoming_connections", max_connections),
            ],
        )
        self._stopped = threading.Event()
        api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime_servicer, self._server)
        api_pb2_grpc.add_ImageServiceServicer_to_server(image_servicer, self._server)

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
            try:
                if stat.S_ISSOCK(self._socket_path.lstat().st_mode):
                    self._socket_path.unlink()
            except FileNotFoundError:
                pass
            _log.info("stopped serving CRI", socket=str(self._socket_path))
        finally:
            self._stopped.set()
