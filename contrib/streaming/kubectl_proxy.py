"""Check pycrio's streaming server with a real kubectl, without a cluster.

A stand-in API server: it answers kubectl's discovery and `GET pod`, and for `.../exec`, `.../attach` and
`.../portforward` it does what the kubelet does: asks pycrio's streaming service for a URL and pipes the
client's upgraded connection to it. Behind it: the streaming server with the local-process fake backend
(commands run on this host), or with --real real runc containers under conmon (root), and, for
port-forward, the network namespace given by --netns.

    .venv/bin/python contrib/streaming/kubectl_proxy.py PORT [--real] [--netns PATH] &
    kubectl --server http://127.0.0.1:PORT exec p -- sh -c 'echo hi; exit 3'      # WebSocket v5
    KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false kubectl --server ... exec -i p -- cat  # SPDY
    kubectl --server ... attach -i p -c ctr
    kubectl --server ... port-forward pod/p LOCAL:REMOTE
"""

import argparse
import json
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from adapters.streaming.netns_port_forwarder import NetnsPortForwarder  # noqa: E402
from adapters.streaming.oci_container_streams import OciContainerStreams  # noqa: E402
from adapters.streaming.server import StreamingServer  # noqa: E402
from domain.streaming import (  # noqa: E402
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    RequestCache,
    StreamingService,
    StreamRequest,
)
from ports.streaming import ContainerStreams  # noqa: E402
from ports.streaming_targets import ContainerIo, StreamContainer  # noqa: E402
from tests.fakes.streaming import FakeStreamTargets, LocalProcessStreams  # noqa: E402
from tests.streaming.real_container import RealContainer, build_rootfs  # noqa: E402

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
    "spec": {"containers": [{"name": "ctr", "image": "x", "stdin": True}]},
    "status": {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "ctr",
                "ready": True,
                "restartCount": 0,
                "image": "x",
                "imageID": "",
                "state": {"running": {}},
            }
        ],
    },
}
SUBRESOURCE = {"namespaced": True, "singularName": "", "verbs": ["create", "get"]}
DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
            {"name": "pods/exec", "kind": "PodExecOptions", **SUBRESOURCE},
            {"name": "pods/attach", "kind": "PodAttachOptions", **SUBRESOURCE},
            {"name": "pods/portforward", "kind": "PodPortForwardOptions", **SUBRESOURCE},
        ],
    },
}


def respond(conn: socket.socket, status: str, doc: object) -> None:
    body = json.dumps(doc).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    conn.sendall(head.encode() + body)
    conn.close()


def pipe(a: socket.socket, b: socket.socket) -> None:
    with a, b:
        while True:
            ready, _, _ = select.select([a, b], [], [])
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)


def stream_request(kind: str, query: dict[str, list[str]]) -> StreamRequest:
    def flag(name: str) -> bool:
        return query.get(name, ["false"])[0] in ("true", "1")

    streams = {"tty": flag("tty"), "stdin": flag("stdin"), "stdout": flag("stdout"), "stderr": flag("stderr")}
    if kind == "exec":
        return ExecRequest("ctr", tuple(query["command"]), **streams)
    if kind == "attach":
        return AttachRequest("ctr", **streams)
    return PortForwardRequest("pod", tuple(int(p) for p in query.get("ports", [])))


def handle(conn: socket.socket, service: StreamingService) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    method, target, _ = head.split(b"\r\n")[0].decode().split(" ")
    print(method, target, flush=True)
    parts = urlsplit(target)
    if parts.path in DISCOVERY:
        return respond(conn, "200 OK", DISCOVERY[parts.path])
    if parts.path.endswith("/pods/p"):
        return respond(conn, "200 OK", POD)
    kind = parts.path.rsplit("/", 1)[1]
    if kind not in ("exec", "attach", "portforward"):
        return respond(conn, "404 Not Found", {"kind": "Status", "status": "Failure", "code": 404})
    url = urlsplit(service.url_for(stream_request(kind, parse_qs(parts.query))))
    upstream = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80))
    upstream.sendall(head.replace(target.encode(), url.path.encode(), 1) + b"\r\n\r\n" + rest)
    pipe(conn, upstream)


class _Lookup:
    def __init__(self, io: ContainerIo) -> None:
        self.io = io

    def container_io(self, container_id: str) -> ContainerIo:
        return self.io


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--real", action="store_true", help="a real runc container under conmon")
    parser.add_argument("--netns", default="", help="network namespace path for port-forward")
    options = parser.parse_args()
    cache = RequestCache(60, time.monotonic)
    targets = FakeStreamTargets()
    script = "while read l; do echo attached:$l; done"
    backend: ContainerStreams
    if options.real:
        work = Path(tempfile.mkdtemp(prefix="pcstream-kubectl-"))
        build_rootfs(work / "rootfs")
        container = RealContainer(work, work / "rootfs", ["sh", "-c", script], True, False, False).start()
        backend = OciContainerStreams(_Lookup(container.io()), work / "scratch")
        print(
            f"container {container.id}; stop it with: runc --root {container.runtime_root} kill", flush=True
        )
    else:
        local = LocalProcessStreams()
        local.start_container("ctr", ["sh", "-c", script], stdin=True)
        backend = local
    targets.containers["ctr"] = targets.containers.get("ctr") or StreamContainer("ctr", stdin=True)
    targets.sandboxes["pod"] = options.netns
    server = StreamingServer("127.0.0.1", 0, cache, backend, NetnsPortForwarder(targets.sandbox_netns), 3600)
    server.start()
    service = StreamingService(cache, targets, lambda: server.base_url)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that the container is stopped
    listener = socket.create_server(("127.0.0.1", options.port))
    print("ready", flush=True)
    try:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn, service), daemon=True).start()
    finally:
        if options.real:
            container.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
