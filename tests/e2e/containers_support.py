"""Set-up for the containers e2e suite: a daemon with a busybox image already in its store, pods, helpers.

The image is put into the daemon's store before it starts (layer unpacked by the overlay layer store, record
written by the image store), so these tests need no registry. Pods use a private CNI bridge (`pcctr0`,
10.87.0.0/24) and cgroups under `pycrio-test-containers/`.
"""

import contextlib
import hashlib
import io
import json
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from adapters.cri.generated import api_pb2 as pb
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_store import StateImageStore
from adapters.storage.overlay_layer_store import OverlayLayerStore
from ports.image_store import ImageConfig, ImageRecord
from tests.contract.container_host import TEST_CGROUP, build_busybox_rootfs
from tests.cri_client import CriClient
from tests.e2e.daemon import Daemon

IMAGE = "docker.io/library/busybox:latest"
CNI_CONF = {
    "cniVersion": "1.0.0",
    "name": "pctest-containers",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "pcctr0",
            "isGateway": True,
            "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.87.0.0/24"}]],
                     "dataDir": "@DATA@"},
        },
        {"type": "loopback"},
    ],
}  # fmt: skip

T = TypeVar("T")


def seed_busybox_image(root: Path, scratch: Path) -> str:
    """Unpack a busybox layer and record the image in the store under `root`; returns the image id."""
    rootfs = build_busybox_rootfs(scratch / "busybox-rootfs")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(rootfs)), recursive=False)
    data = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    config = {"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}  # fmt: skip
    image_id = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    state = AtomicFileStateStore(root / "state")
    layers = OverlayLayerStore(root / "storage", state)
    layers.unpack("", diff_id, [data], f"image:{image_id}")
    StateImageStore(state).put(
        ImageRecord(
            id=image_id,
            repo_tags=(IMAGE,),
            repo_digests=(f"docker.io/library/busybox@sha256:{'0' * 64}",),
            layers=(diff_id,),
            size=len(data),
            config=ImageConfig(cmd=("sh",), env=("PATH=/usr/sbin:/usr/bin:/sbin:/bin",)),
            oci_config=config,
        )
    )
    return image_id


def write_cni_conf(
    directory: Path,
    ipam_dir: Path,
    name: str = "pctest-containers",
    bridge: str = "pcctr0",
    subnet: str = "10.87.0.0/24",
) -> Path:
    """A bridge + host-local + loopback conflist; suites running at once each take their own bridge."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(CNI_CONF).replace("@DATA@", str(ipam_dir))
    text = text.replace("pcctr0", bridge).replace("10.87.0.0/24", subnet).replace("pctest-containers", name)
    (directory / f"10-{name}.conflist").write_text(text)
    return directory


def start_private_daemon(
    work: Path, name: str, bridge: str, subnet: str, settings: Sequence[str] = ()
) -> tuple[Daemon, str]:
    """A daemon on `work` with the busybox image, a CNI bridge and a cgroup parent of its own (suites that run
    at once must not share them), plus `settings`; returns it and its cgroup parent."""
    seed_busybox_image(work / "pycrio" / "root", work)
    write_cni_conf(work / "net.d", work / "ipam", name=f"pctest-{name}", bridge=bridge, subnet=subnet)
    parent = f"/{TEST_CGROUP}/{name}-{uuid.uuid4().hex[:6]}"
    daemon = Daemon(
        work / "pycrio",
        [
            f'network.cni_conf_dir="{work / "net.d"}"',
            f'pods.default_cgroup_parent="{parent}"',
            f'runtime.runtimes.runc.root="{work / "runc"}"',
            *settings,
        ],
    ).start()
    return daemon, parent


def wait_until(check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def pod_config(name: str, log_dir: Path, **linux: Any) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="pctest", attempt=0),
        hostname=name,
        log_directory=str(log_dir),
        linux=pb.LinuxPodSandboxConfig(**linux),
    )


def container_config(name: str, command: list[str], **fields: Any) -> pb.ContainerConfig:
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name),
        image=pb.ImageSpec(image=IMAGE),
        command=command,
        log_path=f"{name}.log",
        **fields,
    )


def run_container(
    client: CriClient, pod_id: str, pod: pb.PodSandboxConfig, config: pb.ContainerConfig
) -> str:
    created = client.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    )
    container_id: str = created.container_id
    client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
    return container_id


def status(client: CriClient, container_id: str, verbose: bool = False) -> pb.ContainerStatusResponse:
    response: pb.ContainerStatusResponse = client.runtime.ContainerStatus(
        pb.ContainerStatusRequest(container_id=container_id, verbose=verbose)
    )
    return response


def wait_exited(client: CriClient, container_id: str) -> pb.ContainerStatus:
    def exited() -> pb.ContainerStatus | None:
        current = status(client, container_id).status
        return current if current.state == pb.CONTAINER_EXITED else None

    return wait_until(exited, what=f"container {container_id} to exit")


def log_lines(path: str) -> list[tuple[str, str]]:
    """(stream, text) of each line the container wrote; partial entries (P) are joined to their line."""
    lines: list[tuple[str, str]] = []
    pending: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        _, stream, tag, text = [*line.split(" ", 3), ""][:4]
        pending[stream] = pending.get(stream, "") + text
        if tag == "F":
            lines.append((stream, pending.pop(stream)))
    return lines


def remove_pods(client: CriClient, pod_ids: list[str]) -> None:
    """Stop and remove each pod (and so its containers), whatever state it is in."""
    for pod_id in pod_ids:
        with contextlib.suppress(grpc.RpcError):
            client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        with contextlib.suppress(grpc.RpcError):
            client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def force_delete_runc_containers(root: Path) -> list[str]:
    """Delete every container runc still knows under `root`; returns their ids (what was left behind)."""
    listed = subprocess.run(
        ["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True, check=False
    )
    ids = listed.stdout.split()
    for container_id in ids:
        subprocess.run(
            ["runc", "--root", str(root), "delete", "--force", container_id], capture_output=True, check=False
        )
    return ids


def user_namespace(host_id: int, length: int = 65536) -> pb.NamespaceOption:
    """The namespace options the kubelet sends for a pod with hostUsers: false (one mapping each)."""
    mapping = pb.IDMapping(host_id=host_id, container_id=0, length=length)
    return pb.NamespaceOption(userns_options=pb.UserNamespace(mode=pb.POD, uids=[mapping], gids=[mapping]))
