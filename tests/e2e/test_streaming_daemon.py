"""Exec, Attach and PortForward through the daemon into real pods and containers."""
# ruff: noqa: F811  (pytest fixtures imported from test_containers are parameters here)

import secrets
import struct

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.containers_support import container_config, run_container, wait_exited
from tests.e2e.test_containers import Env, env, shared_pod  # noqa: F401  (module fixtures)
from tests.streaming.real_container import processes_matching
from tests.streaming_client import (
    SpdyCommand,
    SpdyPortForward,
    WebSocketClient,
    WebSocketCommand,
    _websocket_handshake,
    wait_until,
)

Pod = tuple[str, pb.PodSandboxConfig]


def test_exec_over_spdy_gives_both_streams_and_the_exit_code(env: Env, shared_pod: Pod) -> None:
    pod_id, pod = shared_pod
    target = run_container(env.client, pod_id, pod, container_config("exec-spdy", ["sleep", "600"]))
    request = pb.ExecRequest(
        container_id=target, cmd=["sh", "-c", "echo hi; echo err >&2; exit 3"], stdout=True, stderr=True
    )
    url = env.client.runtime.Exec(request).url
    result = SpdyCommand(url, stdin=False, stdout=True, stderr=True, tty=False).wait()
    assert (result.stdout, result.stderr, result.exit_code) == (b"hi\n", b"err\n", 3)


def test_exec_over_websocket_with_a_tty_and_an_id_prefix(env: Env, shared_pod: Pod) -> None:
    pod_id, pod = shared_pod
    target = run_container(env.client, pod_id, pod, container_config("exec-ws", ["sleep", "600"]))
    request = pb.ExecRequest(
        container_id=target[:12], cmd=["sh", "-c", "read l; echo tty:$l"], tty=True, stdin=True, stdout=True
    )
    ws = WebSocketCommand(env.client.runtime.Exec(request).url)
    ws.resize(90, 30)
    ws.send(b"yes\n")
    result = ws.wait()
    assert b"tty:yes" in result.stdout
    assert result.exit_code == 0


def test_attach_with_stdin_once(env: Env, shared_pod: Pod) -> None:
    pod_id, pod = shared_pod
    script = "while read l; do echo got:$l; done; echo bye"
    config = container_config("attach-me", ["sh", "-c", script], stdin=True, stdin_once=True)
    target = run_container(env.client, pod_id, pod, config)
    url = env.client.runtime.Attach(
        pb.AttachRequest(container_id=target, stdin=True, stdout=True, stderr=True)
    ).url
    command = SpdyCommand(url, stdin=True, stdout=True, stderr=True, tty=False)
    command.send_lines_until_echoed(b"got:")
    command.close_stdin()
    result = command.wait()
    assert result.stdout.endswith(b"bye\n")
    assert result.exit_code == 0
    assert wait_exited(env.client, target).exit_code == 0  # stdin_once: the process saw EOF and ended


def test_port_forward_over_spdy_and_websocket(env: Env, shared_pod: Pod) -> None:
    pod_id, pod = shared_pod
    web = ["busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/etc"]
    run_container(env.client, pod_id, pod, container_config("web", web))
    url = env.client.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod_id, port=[8080])).url
    forward = SpdyPortForward(url)
    page = b""
    for _ in range(100):  # until httpd listens
        data, _error = forward.connect(8080)
        data.write(b"GET /hostname HTTP/1.0\r\n\r\n")
        page = data.read_all()
        if page.startswith(b"HTTP/1."):
            break
    forward.close()
    assert page.split(b"\r\n", 1)[0].endswith(b"200 OK"), page

    url = env.client.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod_id, port=[8080])).url
    client = WebSocketClient(url, ["v4.channel.k8s.io"])
    client.read_until(0, lambda got: len(got) >= 2)
    assert client.channel(0)[:2] == struct.pack("<H", 8080)
    client.write(0, b"GET /hostname HTTP/1.0\r\n\r\n")
    got = client.read_until(0, lambda got: b"\r\n\r\n" in got[2:])
    assert b" 200 " in got
    client.close()


def test_stream_requests_for_absent_or_stopped_targets(env: Env, shared_pod: Pod) -> None:
    pod_id, pod = shared_pod
    with pytest.raises(grpc.RpcError) as absent:
        env.client.runtime.Exec(pb.ExecRequest(container_id="nope", cmd=["true"], stdout=True))
    assert absent.value.code() == grpc.StatusCode.NOT_FOUND
    done = run_container(env.client, pod_id, pod, container_config("done", ["true"]))
    wait_exited(env.client, done)
    with pytest.raises(grpc.RpcError) as exited:
        env.client.runtime.Exec(pb.ExecRequest(container_id=done, cmd=["true"], stdout=True))
    assert exited.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as no_pod:
        env.client.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id="nope", port=[80]))
    assert no_pod.value.code() == grpc.StatusCode.NOT_FOUND


def _blocked_writing(marker: str) -> bool:
    """Every process whose command line holds `marker` sleeps in a pipe write: nothing drains its output."""
    pids = [line.split()[0] for line in processes_matching(marker)]
    waits = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/wchan") as wchan:
                waits.append(wchan.read())
        except OSError:
            return False
    return bool(waits) and all("pipe_write" in wait for wait in waits)


def test_unread_exec_output_blocks_the_writer_and_the_daemon_serves_on(env: Env, shared_pod: Pod) -> None:
    """Backpressure: a client that never reads the output of an endless writer leaves the writer blocked in
    its pipe (the daemon holds a bounded amount of it, not all), and other calls are served meanwhile."""
    pod_id, pod = shared_pod
    target = run_container(env.client, pod_id, pod, container_config("exec-flood", ["sleep", "600"]))
    marker = f"flood{secrets.randbelow(10**6)}"
    flood = f"while :; do echo {marker}{'x' * 200}; done"
    assert env.daemon.process is not None
    daemon_pid = env.daemon.process.pid
    sockets = []
    try:
        for _ in range(3):
            request = pb.ExecRequest(container_id=target, cmd=["sh", "-c", flood], stdout=True, stderr=True)
            sock, _, _ = _websocket_handshake(env.client.runtime.Exec(request).url, ["v4.channel.k8s.io"])
            sockets.append(sock)  # never read
        assert wait_until(lambda: _blocked_writing(marker), timeout=60), processes_matching(marker)
        with open(f"/proc/{daemon_pid}/status") as status:
            rss_kib = int(next(line for line in status if line.startswith("VmRSS")).split()[1])
        assert rss_kib < 512 * 1024, f"daemon RSS {rss_kib} KiB with three unread floods"
        assert env.client.runtime.Version(pb.VersionRequest(), timeout=30).runtime_name == "pycrio"
        exec_sync = pb.ExecSyncRequest(container_id=target, cmd=["echo", "served"], timeout=30)
        assert env.client.runtime.ExecSync(exec_sync, timeout=60).stdout == b"served\n"
    finally:
        for sock in sockets:
            sock.close()
    assert wait_until(lambda: not processes_matching(marker), timeout=60), processes_matching(marker)
