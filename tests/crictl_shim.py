"""The crictl verbs the README quickstart uses, through the suite's CRI client, printing what crictl prints.

crictl is not a dependency of pycrio; where it is absent, tests/e2e/test_quickstart.py runs the README's
commands with this instead, on the same JSON files. Output follows crictl 1.2x (ids shortened to 13
characters in tables). `exec` goes through ExecSync, `port-forward` bridges one HTTP exchange per
connection (enough for `curl`), `logs` reads the CRI log file the container writes.
"""

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import CriClient
from tests.streaming_client import SpdyPortForward


class Crictl:
    def __init__(self, client: CriClient, workdir: Path) -> None:
        self.client = client
        self.workdir = workdir
        self.forwarders: list[socket.socket] = []

    def run(self, argv: list[str]) -> str:
        verb, *args = argv
        handler = getattr(self, "cmd_" + verb.replace("-", "_"), None)
        if handler is None:
            raise ValueError(f"crictl shim: no verb {verb!r}")
        return str(handler(*args))

    def _json(self, path: str, message: Any) -> Any:
        document = json.loads((self.workdir / path).read_text())
        return json_format.ParseDict(document, message)

    def cmd_pull(self, image: str) -> str:
        reply = self.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=300)
        return f"Image is up to date for {reply.image_ref}"

    def cmd_runp(self, pod_json: str) -> str:
        config = self._json(pod_json, pb.PodSandboxConfig())
        return str(self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id)

    def cmd_create(self, pod_id: str, container_json: str, pod_json: str) -> str:
        config = self._json(container_json, pb.ContainerConfig())
        sandbox = self._json(pod_json, pb.PodSandboxConfig())
        request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=sandbox)
        return str(self.client.runtime.CreateContainer(request).container_id)

    def cmd_start(self, container_id: str) -> str:
        self.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        return container_id

    def cmd_ps(self) -> str:
        running = pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))
        items = self.client.runtime.ListContainers(pb.ListContainersRequest(filter=running)).containers
        rows = [["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE"]]
        for item in items:
            rows.append(
                [
                    item.id[:13],
                    item.image.image[:13] if len(item.image.image) == 64 else item.image.image,
                    _ago(item.created_at),
                    "Running",
                    item.metadata.name,
                    str(item.metadata.attempt),
                    item.pod_sandbox_id[:13],
                    item.labels.get("io.kubernetes.pod.name", "unknown"),
                    item.labels.get("io.kubernetes.pod.namespace", "unknown"),
                ]
            )
        return _table(rows)

    def cmd_logs(self, container_id: str) -> str:
        status = self.client.runtime.ContainerStatus(
            pb.ContainerStatusRequest(container_id=container_id)
        ).status
        lines = Path(status.log_path).read_text().splitlines()
        # CRI log format: "<time> <stream> <P|F> <text>"
        return "\n".join(line.split(" ", 3)[3] for line in lines if line.count(" ") >= 3)

    def cmd_exec(self, container_id: str, *command: str) -> str:
        request = pb.ExecSyncRequest(container_id=container_id, cmd=list(command), timeout=30)
        reply = self.client.runtime.ExecSync(request)
        return str((reply.stdout + reply.stderr).decode()).rstrip("\n")

    def cmd_port_forward(self, pod_id: str, ports: str) -> str:
        local, _, remote = ports.partition(":")
        url = self.client.runtime.PortForward(
            pb.PortForwardRequest(pod_sandbox_id=pod_id, port=[int(remote)])
        ).url
        listener = socket.create_server(("127.0.0.1", int(local)))
        self.forwarders.append(listener)
        # One SPDY connection (the URL is single-use), one pair of streams per forwarded connection.
        forward = SpdyPortForward(url)
        threading.Thread(target=_forward, args=(listener, forward, int(remote)), daemon=True).start()
        return f"Forwarding from 127.0.0.1:{local} -> {remote}"

    def cmd_stats(self) -> str:
        stats = self.client.runtime.ListContainerStats(pb.ListContainerStatsRequest()).stats
        rows = [["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES", "SWAP"]]
        for item in stats:
            rows.append(
                [
                    item.attributes.id[:13],
                    item.attributes.metadata.name,
                    f"{item.cpu.usage_nano_cores.value / 1e7:.2f}",
                    _size(item.memory.working_set_bytes.value),
                    _size(item.writable_layer.used_bytes.value),
                    str(item.writable_layer.inodes_used.value),
                    _size(item.swap.swap_usage_bytes.value),
                ]
            )
        return _table(rows)

    def cmd_stop(self, container_id: str) -> str:
        self.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=10))
        return container_id

    def cmd_rm(self, container_id: str) -> str:
        self.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))
        return container_id

    def cmd_stopp(self, pod_id: str) -> str:
        self.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        return f"Stopped sandbox {pod_id}"

    def cmd_rmp(self, pod_id: str) -> str:
        self.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        return f"Removed sandbox {pod_id}"

    def close(self) -> None:
        for listener in self.forwarders:
            listener.close()


def _forward(listener: socket.socket, forward: SpdyPortForward, port: int) -> None:
    """One HTTP exchange per accepted connection: the request in, the response until the server closes."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                request += chunk
            data, _error = forward.connect(port)
            data.write(request)
            conn.sendall(data.read_all())


def _ago(created_ns: int) -> str:
    seconds = int(time.time() - created_ns / 1e9)
    return "Less than a second ago" if seconds < 1 else f"{seconds} seconds ago"


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.4g}{unit}" if unit != "B" else f"{count}B"
        count /= 1000  # type: ignore[assignment]
    return f"{count}B"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
