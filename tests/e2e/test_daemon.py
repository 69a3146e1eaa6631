"""The daemon as the kubelet meets it: Version, Status, RuntimeConfig, and how it starts and stops."""

import os
import re
import signal
import stat
import subprocess
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.streaming_client import HttpError, SpdyCommand, http_get


def test_version(daemon: Daemon) -> None:
    version = daemon.client.runtime.Version(pb.VersionRequest(version="v1"))
    assert version.runtime_name == "pycrio"
    assert version.runtime_api_version == "v1"
    assert version.runtime_version


def test_status_is_ready_with_a_usable_cni_config(daemon: Daemon) -> None:
    status = daemon.client.runtime.Status(pb.StatusRequest())
    conditions = {c.type: c for c in status.status.conditions}
    assert conditions["RuntimeReady"].status
    assert conditions["NetworkReady"].status, conditions["NetworkReady"].message
    assert "runc" in {h.name for h in status.runtime_handlers}


def test_status_network_not_ready_without_cni_config(tmp_path: Path) -> None:
    empty = tmp_path / "empty-net.d"
    empty.mkdir()
    running = Daemon(tmp_path / "d", [f'network.cni_conf_dir="{empty}"']).start()
    try:
        status = running.client.runtime.Status(pb.StatusRequest())
        network = next(c for c in status.status.conditions if c.type == "NetworkReady")
        assert not network.status
        assert network.reason == "NetworkPluginNotReady"
        assert str(empty) in network.message
    finally:
        running.stop()


def test_verbose_status_shows_the_effective_config(daemon: Daemon) -> None:
    status = daemon.client.runtime.Status(pb.StatusRequest(verbose=True))
    assert str(daemon.socket) in status.info["config"]
    assert not daemon.client.runtime.Status(pb.StatusRequest()).info


def test_runtime_config_reports_the_cgroup_driver(tmp_path: Path) -> None:
    running = Daemon(tmp_path / "d", ["runtime.cgroup_driver=systemd"]).start()
    try:
        reply = running.client.runtime.RuntimeConfig(pb.RuntimeConfigRequest())
        assert reply.linux.cgroup_driver == pb.SYSTEMD
    finally:
        running.stop()


def test_update_runtime_config_keeps_the_pod_cidr_across_restarts(daemon: Daemon) -> None:
    update = pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.244.3.0/24"))
    )
    daemon.client.runtime.UpdateRuntimeConfig(update)
    daemon.stop()
    daemon.start()
    assert daemon.client.runtime.Status(pb.StatusRequest(verbose=True)).info["podCIDR"] == "10.244.3.0/24"


def test_socket_mode_is_0660(daemon: Daemon) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o660


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_and_removes_the_socket(daemon: Daemon, sig: int) -> None:
    daemon.client.runtime.Version(pb.VersionRequest())
    assert daemon.stop(sig) == 0
    assert not daemon.socket.exists()
    assert "stopping" in daemon.log()


def test_second_daemon_on_a_live_socket_is_refused(daemon: Daemon) -> None:
    second = subprocess.run(daemon.command(), capture_output=True, timeout=60, env=_env())
    assert second.returncode == 1
    assert b"in use" in second.stderr
    daemon.client.runtime.Version(pb.VersionRequest())


def test_stale_socket_is_replaced(daemon: Daemon) -> None:
    assert daemon.stop(signal.SIGKILL) != 0
    assert daemon.socket.exists()
    daemon.start()
    daemon.client.runtime.Version(pb.VersionRequest())


def test_bad_config_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    broken = Daemon(tmp_path / "d", ["runtime.cgroup_drvier=systemd"])
    result = subprocess.run(broken.command(), capture_output=True, timeout=60, env=_env())
    assert result.returncode == 2
    assert b"runtime.cgroup_drvier" in result.stderr


def test_unbuilt_rpc_is_unimplemented(daemon: Daemon) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        daemon.client.runtime.CheckpointContainer(pb.CheckpointContainerRequest(container_id="x"))
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_config_command_prints_effective_toml(tmp_path: Path) -> None:
    command = [*Daemon(tmp_path / "d", ["log.format=json"]).command(), "config"]
    result = subprocess.run(command, capture_output=True, timeout=60, env=_env(), check=True)
    assert b'format = "json"' in result.stdout
    assert b"[runtime.runtimes.runc]" in result.stdout


def _env() -> dict[str, str]:
    from tests.e2e.daemon import REPO

    return dict(os.environ, PYTHONPATH=str(REPO / "src"))


def test_streaming_rpcs_validate_and_look_up_their_target(daemon: Daemon) -> None:
    runtime = daemon.client.runtime
    cases = [
        (runtime.Exec, pb.ExecRequest(container_id="c", cmd=["sh"], tty=True, stdout=True, stderr=True)),
        (runtime.Exec, pb.ExecRequest(container_id="c", cmd=["sh"])),
        (runtime.Exec, pb.ExecRequest(container_id="", cmd=["sh"], stdout=True)),
        (runtime.Attach, pb.AttachRequest(container_id="c")),
        (runtime.PortForward, pb.PortForwardRequest(pod_sandbox_id="")),
    ]
    for rpc, request in cases:
        with pytest.raises(grpc.RpcError) as failure:
            rpc(request)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    for rpc, request in [
        (runtime.Exec, pb.ExecRequest(container_id="absent", cmd=["sh"], stdout=True)),
        (runtime.Attach, pb.AttachRequest(container_id="absent", stdout=True)),
        (runtime.PortForward, pb.PortForwardRequest(pod_sandbox_id="absent", port=[80])),
    ]:
        with pytest.raises(grpc.RpcError) as failure:
            rpc(request)
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND, request
    url = re.search(r"streaming server listening\s+url=(\S+)", daemon.log())
    assert url is not None, daemon.log()
    assert http_get(f"{url.group(1)}/exec/not-a-token")[0] == 400  # no upgrade: the token is not looked at
    with pytest.raises(HttpError) as unknown:
        SpdyCommand(f"{url.group(1)}/exec/not-a-token", stdin=False, stdout=True, stderr=False, tty=False)
    assert unknown.value.status == 404


def test_a_streaming_tls_key_that_cannot_be_read_stops_start_up(tmp_path: Path) -> None:
    settings = [f'streaming.tls_cert="{tmp_path}/none.crt"', f'streaming.tls_key="{tmp_path}/none.key"']
    daemon = Daemon(tmp_path / "d", settings)
    result = subprocess.run(daemon.command(), capture_output=True, env=_env(), timeout=60)
    assert result.returncode == 1
    assert b"streaming server" in result.stderr
