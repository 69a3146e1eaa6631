"""The bench's CRI client: stubs over a unix socket, and the pod and container configs it sends.

Every pod carries the run's label, so cleanup can find exactly what this run made even on a runtime that
other clients use.
"""

from dataclasses import dataclass
from pathlib import Path

import grpc

from adapters.cri.generated import api_pb2, api_pb2_grpc

RUN_LABEL = "pcbench.run"
NAMESPACE = "pcbench"
RPC_TIMEOUT = 120.0


@dataclass
class CriConnection:
    channel: grpc.Channel
    runtime: api_pb2_grpc.RuntimeServiceStub
    image: api_pb2_grpc.ImageServiceStub

    def close(self) -> None:
        self.channel.close()


def normalize_endpoint(endpoint: str) -> str:
    return endpoint if endpoint.startswith("unix://") else f"unix://{Path(endpoint).resolve()}"


def connect(endpoint: str, wait: float = 15.0) -> CriConnection:
    channel = grpc.insecure_channel(
        normalize_endpoint(endpoint),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    grpc.channel_ready_future(channel).result(timeout=wait)
    return CriConnection(
        channel, api_pb2_grpc.RuntimeServiceStub(channel), api_pb2_grpc.ImageServiceStub(channel)
    )


def is_unimplemented(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNIMPLEMENTED


def describe(error: BaseException) -> str:
    if isinstance(error, grpc.RpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Requests:
    """Builds the CRI messages of one run on one runtime."""

    run_id: str
    cgroup_parent: str
    log_dir: Path

    def pod_config(self, name: str) -> api_pb2.PodSandboxConfig:
        uid = f"{self.run_id}-{name}"
        return api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name=name, uid=uid, namespace=NAMESPACE, attempt=0),
            hostname=name[:63],
            log_directory=str(self.log_dir / name),
            labels={RUN_LABEL: self.run_id},
            linux=api_pb2.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=api_pb2.LinuxSandboxSecurityContext(
                    namespace_options=api_pb2.NamespaceOption(
                        network=api_pb2.POD, pid=api_pb2.CONTAINER, ipc=api_pb2.POD
                    )
                ),
            ),
        )

    def container_config(self, name: str, image: str, command: list[str]) -> api_pb2.ContainerConfig:
        return api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=name, attempt=0),
            image=api_pb2.ImageSpec(image=image),
            command=command,
            log_path=f"{name}.log",
            labels={RUN_LABEL: self.run_id},
            linux=api_pb2.LinuxContainerConfig(
                security_context=api_pb2.LinuxContainerSecurityContext(
                    namespace_options=api_pb2.NamespaceOption(
                        network=api_pb2.POD, pid=api_pb2.CONTAINER, ipc=api_pb2.POD
                    )
                )
            ),
        )

    def run_filter(self) -> api_pb2.PodSandboxFilter:
        return api_pb2.PodSandboxFilter(label_selector={RUN_LABEL: self.run_id})
