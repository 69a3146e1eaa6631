"""A small CRI client for tests: stubs for both services over a unix socket."""

import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from adapters.cri.generated import api_pb2_grpc
from ports.oci_runtime import GRPC_MESSAGE_LIMIT


@dataclass
class CriClient:
    channel: grpc.Channel
    runtime: api_pb2_grpc.RuntimeServiceStub
    image: api_pb2_grpc.ImageServiceStub

    def close(self) -> None:
        self.channel.close()


def connect(socket_path: Path, wait: float = 15.0) -> CriClient:
    # The kubelet takes messages up to 16 MiB (gRPC's default is 4).
    channel = grpc.insecure_channel(
        f"unix://{socket_path}", options=[("grpc.max_receive_message_length", GRPC_MESSAGE_LIMIT)]
    )
    grpc.channel_ready_future(channel).result(timeout=wait)
    return CriClient(
        channel, api_pb2_grpc.RuntimeServiceStub(channel), api_pb2_grpc.ImageServiceStub(channel)
    )


def wait_for_socket(path: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.05)
