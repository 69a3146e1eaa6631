"""`pycrio wipe` after an unclean shutdown: a killed daemon's pod leaves an infra process, namespace pins
and a shm tmpfs behind; wipe removes them and the state, and refuses while a daemon runs."""

import json
import os
import secrets
import signal
import subprocess
from pathlib import Path

from adapters.cri.generated import api_pb2 as pb
from adapters.namespaces.linux import process_start_time
from tests.e2e.daemon import REPO, Daemon
from tests.fixtures.images import PushedImages
from tests.fixtures.registry import RunningRegistry, registries_settings
from tests.pod_host import cleanup_run_dir, netns_mounts, remove_cgroups


def _wipe(daemon: Daemon, *flags: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([*daemon.command(), "wipe", *flags], capture_output=True, timeout=120, env=env)


def test_wipe_removes_a_killed_daemons_pods_containers_mounts_and_state(
    tmp_path: Path, registry: RunningRegistry, pushed_images: PushedImages
) -> None:
    cgroup_parent = f"/pycrio-test-wipe/{secrets.token_hex(4)}"
    empty_cni = tmp_path / "net.d"
    empty_cni.mkdir()
    daemon = Daemon(
        tmp_path / "d",
        [
            f'network.cni_conf_dir="{empty_cni}"',
            f'pods.default_cgroup_parent="{cgroup_parent}"',
            *registries_settings(tmp_path, registry),
        ],
    ).start()
    run_dir, root = daemon.workdir / "run", daemon.workdir / "root"
    try:
        host_network = pb.NamespaceOption(network=pb.NODE)
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="wiped", uid="uid-wiped", namespace="e2e-wipe"),
            log_directory=str(tmp_path / "logs"),
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=host_network)
            ),
        )
        sandbox = daemon.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        pid, start_time = (int(p) for p in (run_dir / "pods" / sandbox / "infra" / "pid").read_text().split())
        image = f"{registry.host}/{pushed_images.busybox.repository}:{pushed_images.busybox.tag}"
        daemon.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=120)
        container = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="left"),
            image=pb.ImageSpec(image=image),
            command=["sleep", "600"],
            log_path="left.log",
        )
        request = pb.CreateContainerRequest(pod_sandbox_id=sandbox, config=container, sandbox_config=config)
        container_id = daemon.client.runtime.CreateContainer(request).container_id
        daemon.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        state = json.loads((run_dir / "runc" / container_id / "state.json").read_text())
        container_pid, container_start = state["init_process_pid"], state["init_process_start"]
        assert process_start_time(container_pid) == container_start
        assert daemon.stop(signal.SIGKILL) != 0
        assert netns_mounts(run_dir)

        unconfirmed = _wipe(daemon)
        assert unconfirmed.returncode == 1
        assert b"--yes" in unconfirmed.stderr
        assert root.is_dir() and netns_mounts(run_dir)

        wiped = _wipe(daemon, "--yes")
        assert wiped.returncode == 0, wiped.stderr
        assert f"killed the infra process {pid}".encode() in wiped.stdout
        assert f"deleted container {container_id}".encode() in wiped.stdout
        assert process_start_time(container_pid) != container_start
        assert process_start_time(pid) != start_time
        assert netns_mounts(run_dir) == []
        assert not root.exists() and not run_dir.exists()
    finally:
        daemon.stop(signal.SIGKILL)
        cleanup_run_dir(run_dir)
        remove_cgroups(cgroup_parent)


def test_wipe_refuses_while_a_daemon_serves(daemon: Daemon) -> None:
    refused = _wipe(daemon, "--yes")
    assert refused.returncode == 1
    assert b"in use" in refused.stderr
    daemon.client.runtime.Version(pb.VersionRequest())
    assert (daemon.workdir / "root").is_dir()


def _foreign_container(runc_root: Path, workdir: Path, cgroup: str) -> str:
    """A container another runtime made with runc in `runc_root` (its bundle outside pycrio's dirs)."""
    bundle = workdir / "foreign-bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    subprocess.run(["cp", "/bin/busybox", str(bundle / "rootfs" / "bin")], check=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(terminal=False, args=["/bin/busybox", "sleep", "600"])
    spec["root"] = {"path": str(bundle / "rootfs"), "readonly": True}
    spec["linux"]["cgroupsPath"] = cgroup
    (bundle / "config.json").write_text(json.dumps(spec))
    name = f"foreign-{secrets.token_hex(4)}"
    subprocess.run(
        ["runc", "--root", str(runc_root), "run", "--detach", "--bundle", str(bundle), name],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    return name


def test_wipe_leaves_another_runtimes_containers_in_a_shared_runc_root(
    tmp_path: Path, registry: RunningRegistry, pushed_images: PushedImages
) -> None:
    cgroup_parent = f"/pycrio-test-wipe/{secrets.token_hex(4)}"
    empty_cni = tmp_path / "net.d"
    empty_cni.mkdir()
    shared_root = tmp_path / "shared-runc"
    shared_root.mkdir()
    daemon = Daemon(
        tmp_path / "d",
        [
            f'network.cni_conf_dir="{empty_cni}"',
            f'pods.default_cgroup_parent="{cgroup_parent}"',
            f'runtime.runtimes.runc.root="{shared_root}"',
            *registries_settings(tmp_path, registry),
        ],
    ).start()
    foreign = ""
    try:
        host_network = pb.NamespaceOption(network=pb.NODE)
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="shared", uid="uid-shared", namespace="e2e-wipe"),
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=host_network)
            ),
        )
        sandbox = daemon.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        image = f"{registry.host}/{pushed_images.busybox.repository}:{pushed_images.busybox.tag}"
        daemon.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=120)
        container = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="ours"),
            image=pb.ImageSpec(image=image),
            command=["sleep", "600"],
        )
        request = pb.CreateContainerRequest(pod_sandbox_id=sandbox, config=container, sandbox_config=config)
        ours = daemon.client.runtime.CreateContainer(request).container_id
        daemon.client.runtime.StartContainer(pb.StartContainerRequest(container_id=ours))
        assert daemon.stop(signal.SIGKILL) != 0
        foreign = _foreign_container(shared_root, tmp_path, f"{cgroup_parent}-foreign")
        foreign_pid = json.loads((shared_root / foreign / "state.json").read_text())["init_process_pid"]

        wiped = _wipe(daemon, "--yes")
        assert wiped.returncode == 0, wiped.stderr
        assert f"deleted container {ours}".encode() in wiped.stdout
        assert f"left container {foreign}".encode() in wiped.stdout
        assert not (shared_root / ours).exists()
        assert process_start_time(foreign_pid) is not None
        state = subprocess.run(["runc", "--root", str(shared_root), "state", foreign], capture_output=True)
        assert json.loads(state.stdout)["status"] == "running"
    finally:
        daemon.stop(signal.SIGKILL)
        if foreign:
            subprocess.run(["runc", "--root", str(shared_root), "delete", "--force", foreign], check=False)
            remove_cgroups(f"{cgroup_parent}-foreign")
        cleanup_run_dir(daemon.workdir / "run")
        remove_cgroups(cgroup_parent)
