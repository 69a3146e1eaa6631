"""`pycrio wipe` after an unclean shutdown: a killed daemon's pod leaves an infra process, namespace pins
and a shm tmpfs behind; wipe removes them and the state, and refuses while a daemon runs."""

import os
import secrets
import signal
import subprocess
from pathlib import Path

from adapters.cri.generated import api_pb2 as pb
from adapters.namespaces.linux import process_start_time
from tests.e2e.daemon import REPO, Daemon
from tests.pod_host import cleanup_run_dir, netns_mounts, remove_cgroups


def _wipe(daemon: Daemon, *flags: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([*daemon.command(), "wipe", *flags], capture_output=True, timeout=120, env=env)


def test_wipe_removes_a_killed_daemons_pods_mounts_and_state(tmp_path: Path) -> None:
    cgroup_parent = f"/pycrio-test-wipe/{secrets.token_hex(4)}"
    empty_cni = tmp_path / "net.d"
    empty_cni.mkdir()
    daemon = Daemon(
        tmp_path / "d",
        [f'network.cni_conf_dir="{empty_cni}"', f'pods.default_cgroup_parent="{cgroup_parent}"'],
    ).start()
    run_dir, root = daemon.workdir / "run", daemon.workdir / "root"
    try:
        host_network = pb.NamespaceOption(network=pb.NODE)
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="wiped", uid="uid-wiped", namespace="e2e-wipe"),
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=host_network)
            ),
        )
        sandbox = daemon.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        pid, start_time = (int(p) for p in (run_dir / "pods" / sandbox / "infra" / "pid").read_text().split())
        assert daemon.stop(signal.SIGKILL) != 0
        assert netns_mounts(run_dir)

        unconfirmed = _wipe(daemon)
        assert unconfirmed.returncode == 1
        assert b"--yes" in unconfirmed.stderr
        assert root.is_dir() and netns_mounts(run_dir)

        wiped = _wipe(daemon, "--yes")
        assert wiped.returncode == 0, wiped.stderr
        assert f"killed the infra process {pid}".encode() in wiped.stdout
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
