"""An NRI plugin written for the tests: it speaks ttrpc over NRI's multiplexed socket (the plugin's side of
adapters/nri/ttrpc_mux.py), registers, subscribes to every event, records each event it hears and answers
CreateContainer with the adjustment it was given."""

import socket
import threading
import time
from dataclasses import dataclass, field

from google.protobuf.message import Message

from adapters.nri.generated import nri_pb2 as pb
from adapters.nri.ttrpc_mux import PLUGIN_CONN, RUNTIME_CONN, MuxConnection

_REQUESTS: dict[str, type[Message]] = {
    "Configure": pb.ConfigureRequest,
    "Synchronize": pb.SynchronizeRequest,
    "Shutdown": pb.Empty,
    "RunPodSandbox": pb.RunPodSandboxRequest,
    "UpdatePodSandbox": pb.UpdatePodSandboxRequest,
    "PostUpdatePodSandbox": pb.PostUpdatePodSandboxRequest,
    "StopPodSandbox": pb.StopPodSandboxRequest,
    "RemovePodSandbox": pb.RemovePodSandboxRequest,
    "CreateContainer": pb.CreateContainerRequest,
    "PostCreateContainer": pb.PostCreateContainerRequest,
    "StartContainer": pb.StartContainerRequest,
    "PostStartContainer": pb.PostStartContainerRequest,
    "UpdateContainer": pb.UpdateContainerRequest,
    "PostUpdateContainer": pb.PostUpdateContainerRequest,
    "StopContainer": pb.StopContainerRequest,
    "RemoveContainer": pb.RemoveContainerRequest,
    "ValidateContainerAdjustment": pb.ValidateContainerAdjustmentRequest,
}


@dataclass
class TestPlugin:
    __test__ = False  # not a pytest class

    name: str
    index: str
    adjustment: pb.ContainerAdjustment = field(default_factory=pb.ContainerAdjustment)
    events_mask: int = 0
    hang_on: str = ""  # a method never answered
    fail_on: str = ""  # a method answered with an error
    update_reply: list[pb.ContainerUpdate] = field(default_factory=list)
    # For UpdateContainer: what the plugin changes in the container being updated (memory limit, bytes).
    raise_memory_to: int = 0
    reject_with: str = ""  # as a validator: rejects every adjustment with this reason ("" accepts)
    events: list[tuple[str, object]] = field(default_factory=list)
    synchronized: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)

    def connect(self, path: str) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        self.connect_socket(sock)

    def connect_socket(self, sock: socket.socket) -> None:
        """Over a connection made already (a plugin the runtime started passes its fd 3)."""
        self.mux = MuxConnection(
            sock, self._serve, self.closed.set, calls_on=RUNTIME_CONN, serves_on=PLUGIN_CONN
        )
        self.mux.start()
        self.mux.call(
            "nri.pkg.api.v1alpha1.Runtime",
            "RegisterPlugin",
            pb.RegisterPluginRequest(plugin_name=self.name, plugin_idx=self.index).SerializeToString(),
            10.0,
        )

    def close(self) -> None:
        self.mux.close()

    def update_containers(self, updates: list[pb.ContainerUpdate]) -> pb.UpdateContainersResponse:
        data = self.mux.call(
            "nri.pkg.api.v1alpha1.Runtime",
            "UpdateContainers",
            pb.UpdateContainersRequest(update=updates).SerializeToString(),
            30.0,
        )
        return pb.UpdateContainersResponse.FromString(data)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def wait_for(self, method: str, timeout: float = 30.0) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, request in list(self.events):
                if name == method:
                    return request
            time.sleep(0.02)
        raise AssertionError(f"{self.name} never heard {method}; heard {self.names()}")

    def _serve(self, service: str, method: str, payload: bytes) -> tuple[int, str, bytes]:
        request = _REQUESTS[method].FromString(payload)
        self.events.append((method, request))
        if method == self.hang_on:
            self.closed.wait()
            return 4, "hung", b""
        if method == self.fail_on:
            return 2, f"{self.name} refuses {method}", b""
        if method == "Configure":
            return 0, "", pb.ConfigureResponse(events=self.events_mask).SerializeToString()
        if method == "Synchronize":
            assert isinstance(request, pb.SynchronizeRequest)
            if request.more:  # a part of a split synchronization: answered "more", no updates
                return 0, "", pb.SynchronizeResponse(more=True).SerializeToString()
            self.synchronized.set()
            return 0, "", pb.SynchronizeResponse().SerializeToString()
        if method == "CreateContainer":
            reply = pb.CreateContainerResponse(adjust=self.adjustment, update=self.update_reply)
            return 0, "", reply.SerializeToString()
        if method == "UpdateContainer":
            assert isinstance(request, pb.UpdateContainerRequest)
            updates = list(self.update_reply)
            if self.raise_memory_to:
                own = pb.ContainerUpdate(container_id=request.container.id)
                own.linux.resources.memory.limit.value = self.raise_memory_to
                updates.append(own)
            return 0, "", pb.UpdateContainerResponse(update=updates).SerializeToString()
        if method == "ValidateContainerAdjustment":
            verdict = pb.ValidateContainerAdjustmentResponse(
                reject=bool(self.reject_with), reason=self.reject_with
            )
            return 0, "", verdict.SerializeToString()
        if method == "StopContainer":
            return 0, "", pb.StopContainerResponse().SerializeToString()
        return 0, "", pb.Empty().SerializeToString()
