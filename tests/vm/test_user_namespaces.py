"""Pods in a user namespace (the kubelet's hostUsers: false) under crun, which idmaps mounts in this guest.

The kubelet's options (mode POD, one mapping of 65536 ids at a host id it picked) reach the pod as a user
namespace that owns the pod's other namespaces; the container's rootfs layers and its volume are idmapped,
so root's files stay root's inside while the processes run as unprivileged host ids. runc 1.1 (also in the
guest) cannot idmap mounts: Status says so and such a pod is refused on it.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import connect
from tests.e2e.containers_support import container_config, pod_config, user_namespace
from tests.vm.conftest import UNIT, Node, alive, systemctl

HOST_ID = 3 * 65536
SLEEP = ["/bin/sleep", "3600"]

# One daemon (systemd driver) is enough here: the user namespace does not depend on the cgroup driver.
pytestmark = pytest.mark.parametrize("node", ["systemd"], indirect=True)


def _exec(node: Node, container_id: str, *cmd: str) -> str:
    response = node.client.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=60)
    )
    assert response.exit_code == 0, response.stderr
    return str(response.stdout.decode())


def _host_ids(pid: int) -> tuple[str, str]:
    """The real uid and gid of a process as the host sees them."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(line for line in status if line.startswith("Uid:")).split()[1]
    gid = next(line for line in status if line.startswith("Gid:")).split()[1]
    return uid, gid


def test_status_says_which_handlers_can_run_user_namespaces(node: Node) -> None:
    status = node.client.runtime.Status(pb.StatusRequest())
    handlers = {h.name: h.features.user_namespaces for h in status.runtime_handlers}
    assert handlers["crun"] is True
    assert handlers["runc"] is False


def test_a_pod_in_a_user_namespace_under_crun(node: Node) -> None:
    # The OCI runtime opens the rootfs as the pod's root: the directories above pycrio's root must be
    # searchable, as /var/lib is on a node (pytest makes its own 0700).
    for directory in (node.work, *node.work.parents):
        directory.chmod(directory.stat().st_mode | 0o111)
    volume = node.work / f"userns-volume-{uuid.uuid4().hex[:6]}"
    volume.mkdir()
    (volume / "by-host-root").write_text("x")
    ns = user_namespace(HOST_ID)
    pod = pod_config(
        f"userns-{uuid.uuid4().hex[:6]}",
        node.work / "logs",
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns),
    )
    pod_id = node.client.runtime.RunPodSandbox(
        pb.RunPodSandboxRequest(config=pod, runtime_handler="crun")
    ).pod_sandbox_id
    node.pods.append(pod_id)
    config = container_config(
        "userns",
        SLEEP,
        mounts=[pb.Mount(container_path="/data", host_path=str(volume))],
        linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(namespace_options=ns)
        ),
    )
    created = node.client.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    )
    container_id = created.container_id
    node.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))

    # Inside: the kubelet's mapping, and root owning what root owns in the image, the volume and the files
    # pycrio wrote for the pod.
    assert _exec(node, container_id, "cat", "/proc/self/uid_map").split() == ["0", str(HOST_ID), "65536"]
    assert _exec(node, container_id, "cat", "/proc/self/gid_map").split() == ["0", str(HOST_ID), "65536"]
    owners = _exec(
        node, container_id, "stat", "-c", "%u:%g %n", "/", "/bin", "/etc/passwd", "/data/by-host-root",
        "/etc/hostname", "/etc/resolv.conf", "/dev/shm",
    )  # fmt: skip
    assert [line.split()[0] for line in owners.splitlines()] == ["0:0"] * 7, owners
    assert _exec(node, container_id, "id", "-u").strip() == "0"
    # Root inside may write its rootfs and its volume. The writable layer keeps the mapped host ids; the
    # idmapped volume stores the ids the mapping shifts back: root's file is the host's root's.
    _exec(node, container_id, "touch", "/made-inside", "/data/made-inside")
    upper = node.work / "root" / "storage" / "containers" / container_id / "upper"
    in_rootfs = os.stat(upper / "made-inside")
    assert (in_rootfs.st_uid, in_rootfs.st_gid) == (HOST_ID, HOST_ID)
    in_volume = os.stat(volume / "made-inside")
    assert (in_volume.st_uid, in_volume.st_gid) == (0, 0)

    # Outside: the container's processes and the pod's infra process are unprivileged host ids.
    info = node.container_info(container_id)
    assert _host_ids(int(info["pid"])) == (str(HOST_ID), str(HOST_ID))
    infra = node.infra_pid(pod_id)
    assert Path(f"/proc/{infra}/uid_map").read_text().split() == ["0", str(HOST_ID), "65536"]
    # Every namespace of the pod belongs to its user namespace: the container shares them with the infra.
    for kind in ("user", "net", "ipc", "uts", "pid"):
        assert os.readlink(f"/proc/{info['pid']}/ns/{kind}") == os.readlink(f"/proc/{infra}/ns/{kind}"), kind
    node.remove_pod(pod_id)


def test_runc_refuses_a_user_namespaced_pod_with_its_reason(node: Node) -> None:
    pod = pod_config(
        f"userns-runc-{uuid.uuid4().hex[:6]}",
        node.work / "logs",
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=user_namespace(HOST_ID)),
    )
    with pytest.raises(grpc.RpcError) as caught:
        node.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pod, runtime_handler="runc"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "runtime handler 'runc' cannot run pods in a user namespace" in (caught.value.details() or "")


def _simulate_reboot(node: Node, pids: list[int]) -> None:
    """What a host reboot leaves: pycrio's state under its root, and nothing else of the pod. The daemon
    stops, every process of the pod dies, every mount pycrio made goes, and the runtime dir (a tmpfs on
    /run) is emptied; then the daemon starts again over the surviving state."""
    node.client.close()
    systemctl("stop", UNIT)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    for pid in pids:
        while alive(pid):  # reaped by systemd (PID 1 here); SIGKILL cannot be ignored
            assert time.monotonic() < deadline, f"process {pid} outlived SIGKILL"
            time.sleep(0.05)
    targets = [str(node.work / "root"), str(node.run_dir)]
    mounted = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if any(line.split()[4] == t or line.split()[4].startswith(t + "/") for t in targets)
    ]
    for target in sorted(mounted, key=len, reverse=True):  # deepest first
        subprocess.run(["umount", "-l", target], check=True, timeout=60)
    shutil.rmtree(node.run_dir)
    systemctl("start", UNIT)
    node.client = connect(node.socket, wait=60)


def test_after_a_reboot_the_kubelet_s_new_pod_gets_an_idmapped_rootfs_again(node: Node) -> None:
    """After a reboot the old pod is NOTREADY and its container exited; the kubelet stops the pod, runs a
    new attempt with the same user namespace options and creates its container again. That container's
    rootfs must be idmapped into the new pod's user namespace (root's files root's inside), and the old
    pod and container must still stop and go without their mounts."""
    for directory in (node.work, *node.work.parents):
        directory.chmod(directory.stat().st_mode | 0o111)
    ns = user_namespace(HOST_ID)
    name = f"userns-reboot-{uuid.uuid4().hex[:6]}"

    def run(attempt: int) -> tuple[str, str]:
        pod = pod_config(
            name, node.work / "logs", security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)
        )
        pod.metadata.attempt = attempt
        pod_id = node.client.runtime.RunPodSandbox(
            pb.RunPodSandboxRequest(config=pod, runtime_handler="crun")
        ).pod_sandbox_id
        node.pods.append(pod_id)
        config = container_config(
            "userns",
            SLEEP,
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(namespace_options=ns)
            ),
        )
        config.metadata.attempt = attempt  # the kubelet counts the old container as a restart
        config.log_path = f"userns-{attempt}.log"
        container_id = node.client.runtime.CreateContainer(
            pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
        ).container_id
        node.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        return pod_id, container_id

    old_pod, old_container = run(0)
    assert _exec(node, old_container, "stat", "-c", "%u:%g", "/bin").strip() == "0:0"
    pids = [node.infra_pid(old_pod), int(node.container_info(old_container)["pid"])]
    pids.append(node.conmon_pid(old_container))
    _simulate_reboot(node, pids)

    sandbox = node.client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=old_pod))
    assert sandbox.status.state == pb.SANDBOX_NOTREADY
    status = node.client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=old_container))
    assert status.status.state in (pb.CONTAINER_EXITED, pb.CONTAINER_UNKNOWN)
    with pytest.raises(grpc.RpcError) as caught:  # a CRI start never restarts an exited container
        node.client.runtime.StartContainer(pb.StartContainerRequest(container_id=old_container))
    assert caught.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)

    node.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=old_pod))
    new_pod, new_container = run(1)
    assert _exec(node, new_container, "cat", "/proc/self/uid_map").split() == ["0", str(HOST_ID), "65536"]
    owners = _exec(node, new_container, "stat", "-c", "%u:%g", "/", "/bin", "/etc/passwd")
    assert owners.split() == ["0:0"] * 3, owners
    _exec(node, new_container, "touch", "/made-after-reboot")
    upper = node.work / "root" / "storage" / "containers" / new_container / "upper"
    made = os.stat(upper / "made-after-reboot")
    assert (made.st_uid, made.st_gid) == (HOST_ID, HOST_ID)

    node.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=old_container))
    node.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=old_pod))
    node.pods.remove(old_pod)
    assert not (node.work / "root" / "storage" / "containers" / old_container).exists()
    node.remove_pod(new_pod)
