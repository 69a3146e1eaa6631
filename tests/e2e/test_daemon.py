"""The daemon as the kubelet meets it: Version, Status, RuntimeConfig, and how it starts and stops."""

import itertools
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from app.version import VERSION
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


def test_a_missing_explicit_config_file_stops_start_up(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "app.main", "--config", str(tmp_path / "typo.toml")]
    result = subprocess.run(command, capture_output=True, timeout=60, env=_env())
    assert result.returncode == 2
    assert f"--config: '{tmp_path / 'typo.toml'}' does not exist".encode() in result.stderr


def test_out_of_range_value_and_unusable_handler_stop_start_up_with_one_line_each(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "d", ['runtime.runtimes.kata.path="/nonexistent/kata"'])
    shm = subprocess.run(
        [*daemon.command(), "--set", "pods.shm_size=-5"], capture_output=True, timeout=60, env=_env()
    )
    assert shm.returncode == 2
    assert shm.stderr.decode().splitlines() == [
        "pycrio: bad configuration: pods.shm_size: -5 is not allowed; allowed: 4096 to 1099511627776 bytes"
    ]
    handler = subprocess.run(daemon.command(), capture_output=True, timeout=60, env=_env())
    assert handler.returncode == 2
    assert handler.stderr.decode().splitlines() == [
        "pycrio: bad configuration: runtime.runtimes.kata.path: '/nonexistent/kata' cannot be used; "
        "allowed: an executable file"
    ]
    assert not daemon.socket.exists()


def test_check_reports_what_start_up_would_refuse_without_starting(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "d", [f'network.cni_conf_dir="{tmp_path / "absent"}"'])
    refused = subprocess.run([*daemon.command(), "check"], capture_output=True, timeout=60, env=_env())
    assert refused.returncode == 2
    assert b"network.cni_conf_dir:" in refused.stderr
    assert not daemon.socket.exists()
    (tmp_path / "absent").mkdir()
    usable = subprocess.run([*daemon.command(), "check"], capture_output=True, timeout=60, env=_env())
    assert usable.returncode == 0, usable.stderr
    assert not daemon.socket.exists()


def test_version_command_names_pycrio_python_grpcio_and_the_runtimes(tmp_path: Path) -> None:
    command = [*Daemon(tmp_path / "d").command(), "version"]
    result = subprocess.run(command, capture_output=True, timeout=60, env=_env(), check=True)
    fields = dict(line.split(":", 1) for line in result.stdout.decode().splitlines())
    assert fields["Version"].strip() == VERSION
    assert fields["Python"].strip().startswith("CPython 3.")
    assert fields["grpcio"].strip() == grpc.__version__
    assert fields["Runtime runc"].strip().startswith("runc version ")
    assert fields["conmon"].strip().startswith("conmon version ")
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", fields["GitCommit"].strip())


def test_checkpoint_switched_off_is_unimplemented(tmp_path: Path) -> None:
    """runtime.enable_criu_support = false: CheckpointContainer is refused before anything is looked up."""
    daemon = Daemon(tmp_path / "d", ["runtime.enable_criu_support=false"]).start()
    try:
        with pytest.raises(grpc.RpcError) as failure:
            daemon.client.runtime.CheckpointContainer(pb.CheckpointContainerRequest(container_id="x"))
        assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert failure.value.details() == "method CheckpointContainer not implemented"
        assert "enable_criu_support = false" in daemon.log()
    finally:
        daemon.stop()


def test_config_command_prints_effective_toml(tmp_path: Path) -> None:
    command = [*Daemon(tmp_path / "d", ["log.format=json"]).command(), "config"]
    result = subprocess.run(command, capture_output=True, timeout=60, env=_env(), check=True)
    assert b'format = "json"' in result.stdout
    assert b"[runtime.runtimes.runc]" in result.stdout
    assert b"# a pod's /dev/shm tmpfs" in result.stdout
    lines = result.stdout.decode().splitlines()
    for previous, line in itertools.pairwise(lines):
        if " = " in line and not line.startswith(("#", " ")):
            assert previous.startswith("# "), f"{line!r} has no description above it"


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
    url = re.search(r"streaming server listening\s+(?:\[\S+\]\s+)?url=(\S+)", daemon.log())
    assert url is not None, daemon.log()
    assert http_get(f"{url.group(1)}/exec/not-a-token")[0] == 400  # no upgrade: the token is not looked at
    with pytest.raises(HttpError) as unknown:
        SpdyCommand(f"{url.group(1)}/exec/not-a-token", stdin=False, stdout=True, stderr=False, tty=False)
    assert unknown.value.status == 404


def test_a_streaming_tls_key_that_cannot_be_read_stops_start_up(tmp_path: Path) -> None:
    settings = [f'streaming.tls_cert="{tmp_path}/none.crt"', f'streaming.tls_key="{tmp_path}/none.key"']
    daemon = Daemon(tmp_path / "d", settings)
    result = subprocess.run(daemon.command(), capture_output=True, env=_env(), timeout=60)
    assert result.returncode == 2
    assert b"streaming.tls_cert: " in result.stderr
    assert b"streaming.tls_key: " in result.stderr


def test_json_log_format_applies_to_every_line_with_logger_and_request_ids(tmp_path: Path) -> None:
    running = Daemon(tmp_path / "d", ["log.format=json"]).start()
    try:
        running.client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id="absent"), timeout=10)
    except grpc.RpcError as failure:
        assert failure.code() == grpc.StatusCode.NOT_FOUND
    finally:
        running.stop()
    lines = [json.loads(line) for line in running.log().splitlines()]
    assert all({"logger", "level", "timestamp", "event"} <= set(line) for line in lines), lines
    (failed,) = [line for line in lines if line["event"] == "rpc" and line.get("code") == "NOT_FOUND"]
    assert failed["logger"] == "pycrio.cri"
    assert failed["container_id"] == "absent"
    assert failed["request_id"]


def test_sighup_reloads_the_log_level_and_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = Daemon(tmp_path / "d")
    running.settings.remove("log.level=debug")
    config = running.workdir / "pycrio.toml"
    config.write_text('[log]\nlevel = "info"\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    running.start()
    try:
        assert b"READY=1" in notify.recv(4096)
        running.client.runtime.Version(pb.VersionRequest())
        assert "Version" not in running.log()  # a quiet method: debug only
        config.write_text('[log]\nlevel = "debug"\n[grpc]\nmax_workers = 8\n')
        assert running.process is not None
        running.process.send_signal(signal.SIGHUP)
        # systemd hears of the reload (sd_notify RELOADING=1, then READY=1 once done).
        assert b"RELOADING=1" in notify.recv(4096)
        assert b"READY=1" in notify.recv(4096)
        line = _wait_for_log_line(running, "reloaded")
        assert "log.level='debug'" in line and "grpc.max_workers" in line
        running.client.runtime.Version(pb.VersionRequest())
        assert "method=Version" in running.log()
        assert running.process.poll() is None
    finally:
        assert running.stop() == 0
        notify.close()


def _wait_for_log_line(daemon: Daemon, text: str) -> str:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [line for line in daemon.log().splitlines() if text in line]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} line in the log:\n{daemon.log()}")
