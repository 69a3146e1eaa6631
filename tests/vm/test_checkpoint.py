"""Checkpoint/restore where CRIU works (Debian's kernel in the VM; on the host CRIU rejects the kernel, see
docs/containers.md): a counter is checkpointed with CheckpointContainer and goes on counting, then restored
from the archive with CreateContainer + StartContainer, into its own pod and into a new one, and counts on
from where the checkpoint caught it, with the files it had changed."""

import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.containers_support import container_config, log_lines, wait_until
from tests.vm.conftest import Node, cgroup_of

# One driver: the dump and restore do not depend on it (runc's cgroup placement is the same with both, and
# both passed), and each driver's daemon costs the VM suite minutes.
pytestmark = pytest.mark.parametrize("node", ["systemd"], indirect=True)

# Changes a file and deletes a directory of the image, then counts once a second.
COUNTER = [
    "sh",
    "-c",
    "echo started > /marker; busybox rmdir /home/app; i=0; while true; do i=$((i+1)); echo $i; sleep 1; done",
]


# The kubelet's default (no shareProcessNamespace). CRIU restores the pids it dumped: in a PID namespace
# shared with the pod, the original's pid is taken while it runs, and a restore there fails (EEXIST).
OWN_PID_NAMESPACE = pb.LinuxContainerConfig(
    security_context=pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(pid=pb.CONTAINER))
)


def counts(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(text) for stream, text in log_lines(str(path)) if stream == "stdout" and text.isdigit()]


def exec_output(node: Node, container_id: str, command: list[str]) -> str:
    response = node.client.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=container_id, cmd=command, timeout=60)
    )
    return str(response.stdout.decode().strip())


def test_checkpoint_restore_is_available_here(node: Node) -> None:
    """Not the host's UNIMPLEMENTED: an unknown container is simply not found."""
    with pytest.raises(grpc.RpcError) as raised:
        node.client.runtime.CheckpointContainer(
            pb.CheckpointContainerRequest(container_id="no-such-container", location="/tmp/never.tar")
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_restored_counter_counts_on_from_its_checkpoint(node: Node, tmp_path: Path) -> None:
    uid = str(uuid.uuid4())
    pod_id, pod = node.run_pod("checkpoint", cgroup_parent=node.pod_parent(uid))
    original = node.client.runtime.CreateContainer(
        pb.CreateContainerRequest(
            pod_sandbox_id=pod_id,
            config=container_config("counter", COUNTER, linux=OWN_PID_NAMESPACE),
            sandbox_config=pod,
        )
    ).container_id
    node.client.runtime.StartContainer(pb.StartContainerRequest(container_id=original))
    log = node.work / "logs" / "counter.log"
    wait_until(lambda: len(counts(log)) >= 3, timeout=120, what="the counter to count")

    assert exec_output(node, original, ["sh", "-c", "test -e /home/app || echo gone"]) == "gone"
    archive = tmp_path / "counter.tar"
    before = counts(log)[-1]
    node.client.runtime.CheckpointContainer(
        pb.CheckpointContainerRequest(container_id=original, location=str(archive), timeout=600)
    )
    with tarfile.open(archive) as checkpoint:
        names = set(checkpoint.getnames())
        deleted = json.loads(checkpoint.extractfile("deleted.files").read())  # type: ignore[union-attr]
    assert deleted == ["/home/app"]
    assert {
        "config.dump",
        "spec.dump",
        "rootfs-diff.tar",
        "deleted.files",
        "checkpoint/inventory.img",
    } <= names
    assert archive.stat().st_mode & 0o077 == 0
    # The original goes on counting (cri-o's forensic checkpoint: leave it running).
    after = counts(log)[-1]
    wait_until(lambda: counts(log)[-1] > after, timeout=120, what="the original to go on counting")

    other_pod, other_config = node.run_pod("restored", cgroup_parent=node.pod_parent(str(uuid.uuid4())))
    restore_and_check(node, archive, "same-pod", pod_id, pod, before, original)
    restore_and_check(node, archive, "new-pod", other_pod, other_config, before, original)
    node.remove_pod(other_pod)
    node.remove_pod(pod_id)


def runc_version() -> tuple[int, int]:
    first = subprocess.run(["runc", "--version"], capture_output=True, text=True, check=True).stdout.split()
    major, minor = first[2].split(".")[:2]  # "runc version 1.1.5+ds1"
    return int(major), int(minor)


def restore_and_check(
    node: Node,
    archive: Path,
    name: str,
    pod_id: str,
    pod: pb.PodSandboxConfig,
    before: int,
    original: str,
) -> None:
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=f"restored-{name}"),
        image=pb.ImageSpec(image=str(archive)),
        log_path=f"restored-{name}.log",
        linux=OWN_PID_NAMESPACE,
    )
    created = node.client.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    ).container_id
    status = node.client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=created)).status
    assert status.state == pb.CONTAINER_CREATED
    node.client.runtime.StartContainer(pb.StartContainerRequest(container_id=created))
    status = node.client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=created)).status
    assert status.state == pb.CONTAINER_RUNNING
    # runc before 1.2 gives CRIU no cgroup to restore into on cgroup v2 (docs/containers.md): the processes
    # come back in the checkpointed container's cgroup. From 1.2 on, in the new container's own.
    owner = original if runc_version() < (1, 2) else created
    cgroup = cgroup_of(int(node.container_info(created)["pid"]))
    assert cgroup.name in (f"pycrio-{owner}.scope", f"pycrio-{owner}"), f"{name}: restored into {cgroup}"

    log = node.work / "logs" / f"restored-{name}.log"
    wait_until(lambda: len(counts(log)) >= 2, timeout=120, what=f"{name}: the restored counter")
    restored = counts(log)
    # Counting on: not from 1, but past what was logged before the checkpoint, one by one.
    assert restored[0] > before, (before, restored)
    assert restored == list(range(restored[0], restored[0] + len(restored)))
    # The file changes came back: the file written, the directory removed.
    assert exec_output(node, created, ["cat", "/marker"]) == "started"
    assert exec_output(node, created, ["sh", "-c", "test -e /home/app || echo gone"]) == "gone"

    node.client.runtime.StopContainer(pb.StopContainerRequest(container_id=created, timeout=0))
    node.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=created))
