"""The NriPlugins contract, through the domain's relay: run against the in-memory fake and the real ttrpc
adapter (with tests/nri_plugin.py, a plugin speaking NRI's wire protocol over a unix socket)."""

import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.host.unix_sockets import SocketInUse
from adapters.nri.generated import nri_pb2 as pb
from adapters.nri.socket_plugins import SocketNriPlugins
from adapters.nri.ttrpc_mux import CHUNK_WRITE, MUX_HEADER, MuxConnection
from domain.errors import FailedPrecondition, Unavailable
from domain.nri import NriAdjustment, NriContainer, NriEvent, NriPod, NriReply, NriResources
from domain.nri_relay import NriRelay
from tests.fakes.nri import FakeNriPlugin, FakeNriPlugins
from tests.nri_plugin import TestPlugin

POD = NriPod(id="pod1", name="web", uid="u1", namespace="default")
CONTAINER = NriContainer(id="c1", pod_sandbox_id="pod1", name="app", env=("A=1",))
Connect = Callable[..., Callable[[], list[str]]]


def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture(params=["fake", "socket"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[NriRelay, Connect]]:
    plugins: list[TestPlugin] = []
    if request.param == "fake":
        fake = FakeNriPlugins()
        relay = NriRelay(fake)

        def connect_fake(
            name: str, index: str, env: dict[str, str] | None = None, fail: str = "", reject: str = ""
        ) -> Callable[[], list[str]]:
            reply = NriReply(NriAdjustment(env=tuple((env or {}).items())))
            verdict = NriReply(rejected=bool(reject), reason=reject)
            failing = frozenset(e for e in NriEvent if e.name.replace("_", "").lower() == fail.lower())
            plugin = FakeNriPlugin(
                f"{index}-{name}",
                replies={NriEvent.CREATE_CONTAINER: reply, NriEvent.VALIDATE_CONTAINER_ADJUSTMENT: verdict},
                fail_on=failing,
            )
            fake.connect(plugin)
            return lambda: [r.event.name for r in plugin.heard]

        relay.start(lambda: ([POD], [CONTAINER]), lambda updates: [], lambda cid, reason: None)
        yield relay, connect_fake
        return
    path = str(tmp_path / "nri.sock")
    relay = NriRelay(
        SocketNriPlugins(path, registration_timeout=10.0, request_timeout=10.0, runtime_version="test")
    )
    relay.start(lambda: ([POD], [CONTAINER]), lambda updates: [], lambda cid, reason: None)

    def connect_socket(
        name: str, index: str, env: dict[str, str] | None = None, fail: str = "", reject: str = ""
    ) -> Callable[[], list[str]]:
        adjustment = pb.ContainerAdjustment(env=[pb.KeyValue(key=k, value=v) for k, v in (env or {}).items()])
        plugin = TestPlugin(name, index, adjustment, fail_on=fail, reject_with=reject)
        plugins.append(plugin)
        plugin.connect(path)
        _wait(lambda: f"{index}-{name}" in relay.plugin_names(), f"{name} admitted")
        return lambda: [_event_name(n) for n in plugin.names() if n not in ("Configure", "Synchronize")]

    yield relay, connect_socket
    for p in plugins:
        p.close()
    relay.stop()


def _event_name(method: str) -> str:
    return "".join("_" + c if c.isupper() else c for c in method).lstrip("_").upper()


def test_a_plugin_hears_pod_and_container_events_in_order(harness: tuple[NriRelay, Connect]) -> None:
    relay, connect = harness
    heard = connect("recorder", "10")
    relay.run_pod_sandbox(POD)
    relay.create_container(POD, CONTAINER)
    relay.post_create_container(POD, CONTAINER)
    relay.start_container(POD, CONTAINER)
    relay.post_start_container(POD, CONTAINER)
    relay.update_pod_sandbox(POD, NriResources(memory_limit=1 << 24), NriResources(cpu_shares=512))
    relay.post_update_pod_sandbox(POD)
    relay.stop_container(POD, CONTAINER)
    relay.remove_container(POD, CONTAINER)
    relay.stop_pod_sandbox(POD)
    relay.remove_pod_sandbox(POD)
    assert heard() == [
        "RUN_POD_SANDBOX",
        "CREATE_CONTAINER",
        "VALIDATE_CONTAINER_ADJUSTMENT",  # subscribed to every event: a validator too, as upstream
        "POST_CREATE_CONTAINER",
        "START_CONTAINER",
        "POST_START_CONTAINER",
        "UPDATE_POD_SANDBOX",
        "POST_UPDATE_POD_SANDBOX",
        "STOP_CONTAINER",
        "REMOVE_CONTAINER",
        "STOP_POD_SANDBOX",
        "REMOVE_POD_SANDBOX",
    ]


def test_a_validator_rejecting_the_merged_adjustment_fails_the_create(
    harness: tuple[NriRelay, Connect],
) -> None:
    relay, connect = harness
    adjuster = connect("adjuster", "10", env={"ADDED": "1"})
    validator = connect("validator", "20", reject="no env from plugins")
    with pytest.raises(FailedPrecondition, match=r"20-validator rejected .*'app': no env from plugins"):
        relay.create_container(POD, CONTAINER)
    assert adjuster() == ["CREATE_CONTAINER", "VALIDATE_CONTAINER_ADJUSTMENT"]
    assert validator() == ["CREATE_CONTAINER", "VALIDATE_CONTAINER_ADJUSTMENT"]


def test_adjustments_of_two_plugins_merge_and_a_conflict_names_both(
    harness: tuple[NriRelay, Connect],
) -> None:
    relay, connect = harness
    connect("first", "10", env={"FROM_FIRST": "1"})
    connect("second", "20", env={"FROM_SECOND": "2"})
    adjustment = relay.create_container(POD, CONTAINER)
    assert dict(adjustment.env) == {"FROM_FIRST": "1", "FROM_SECOND": "2"}
    connect("third", "30", env={"FROM_FIRST": "3"})
    with pytest.raises(FailedPrecondition, match="10-first and 30-third both adjust env 'FROM_FIRST'"):
        relay.create_container(POD, CONTAINER)


def test_a_plugin_failing_run_pod_sandbox_fails_it(harness: tuple[NriRelay, Connect]) -> None:
    relay, connect = harness
    connect("refuser", "10", fail="RunPodSandbox")
    with pytest.raises(Unavailable, match="10-refuser"):
        relay.run_pod_sandbox(POD)


def test_a_hanging_plugin_times_out_and_is_dropped(tmp_path: Path) -> None:
    path = str(tmp_path / "nri.sock")
    relay = NriRelay(
        # Long enough for the sleeper's Configure and Synchronize on a loaded host.
        SocketNriPlugins(path, registration_timeout=10.0, request_timeout=5.0, runtime_version="t")
    )
    relay.start(lambda: ([], []), lambda updates: [], lambda cid, reason: None)
    plugin = TestPlugin("sleeper", "10", hang_on="CreateContainer")
    plugin.connect(path)
    _wait(lambda: relay.plugin_names() == ["10-sleeper"], "admitted")
    with pytest.raises(Unavailable, match="did not answer CreateContainer"):
        relay.create_container(POD, CONTAINER)
    assert relay.plugin_names() == []
    assert relay.create_container(POD, CONTAINER).is_empty()
    relay.stop()


def test_a_huge_frame_or_garbage_costs_the_sender_its_connection(tmp_path: Path) -> None:
    path = str(tmp_path / "nri.sock")
    relay = NriRelay(
        SocketNriPlugins(path, registration_timeout=5.0, request_timeout=1.0, runtime_version="t")
    )
    relay.start(lambda: ([], []), lambda updates: [], lambda cid, reason: None)
    for payload in (
        struct.pack(">II", 2, 1 << 30),
        struct.pack(">II", 2, 10) + struct.pack(">IIBB", 1 << 30, 1, 1, 0),
    ):
        hostile = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        hostile.connect(path)
        hostile.sendall(payload)
        hostile.settimeout(10)
        assert hostile.recv(1) == b""  # closed by the runtime, not read into memory
        hostile.close()
    good = TestPlugin("good", "10")
    good.connect(path)
    _wait(lambda: relay.plugin_names() == ["10-good"], "a well-behaved plugin still gets in")
    good.close()
    relay.stop()


def test_a_synchronization_too_large_for_one_message_goes_in_parts(tmp_path: Path) -> None:
    path = str(tmp_path / "nri.sock")
    many = [
        NriContainer(id=f"c{i}", pod_sandbox_id="pod1", name=f"n{i}", env=("X=" + "x" * 1024,))
        for i in range(3000)
    ]
    relay = NriRelay(
        SocketNriPlugins(path, registration_timeout=5.0, request_timeout=10.0, runtime_version="t")
    )
    relay.start(lambda: ([POD], many), lambda updates: [], lambda cid, reason: None)
    plugin = TestPlugin("big", "10")
    plugin.connect(path)
    assert plugin.synchronized.wait(30)
    parts = [r for name, r in plugin.events if name == "Synchronize"]
    assert len(parts) >= 2 and [p.more for p in parts] == [True] * (len(parts) - 1) + [False]  # type: ignore[attr-defined]
    received = [c.id for p in parts for c in p.containers]  # type: ignore[attr-defined]
    assert received == [c.id for c in many]
    plugin.close()
    relay.stop()


LAUNCHED = """#!{python}
import os, socket, sys
sys.path[:0] = [{src!r}, {repo!r}]
from tests.nri_plugin import TestPlugin
plugin = TestPlugin(os.environ["NRI_PLUGIN_NAME"], os.environ["NRI_PLUGIN_IDX"])
plugin.connect_socket(socket.socket(fileno=int(os.environ["NRI_PLUGIN_SOCKET"])))
configured = plugin.wait_for("Configure")
open({out!r} + ".pid", "w").write(str(os.getpid()))
open({out!r}, "w").write(configured.config)
plugin.closed.wait()
"""


def test_a_plugin_in_the_plugin_dir_is_started_and_gets_its_configuration(tmp_path: Path) -> None:
    plugins, conf = tmp_path / "plugins", tmp_path / "conf.d"
    plugins.mkdir()
    conf.mkdir()
    out = tmp_path / "configured"
    repo = Path(__file__).resolve().parents[2]
    script = plugins / "07-launched"
    script.write_text(
        LAUNCHED.format(python=sys.executable, src=str(repo / "src"), repo=str(repo), out=str(out))
    )
    script.chmod(0o755)
    (plugins / "08-not-executable").write_text("")
    (conf / "launched.conf").write_text("greeting: hello\n")
    path = str(tmp_path / "nri.sock")
    relay = NriRelay(SocketNriPlugins(path, 10.0, 10.0, "t", config_dir=str(conf), plugin_dir=str(plugins)))
    relay.start(lambda: ([], []), lambda updates: [], lambda cid, reason: None)
    try:
        _wait(lambda: relay.plugin_names() == ["07-launched"], "the launched plugin registered")
        _wait(
            lambda: out.exists() and out.read_text() == "greeting: hello\n", "configured from launched.conf"
        )
    finally:
        relay.stop()
    assert relay.plugin_names() == []
    pid = int((tmp_path / "configured.pid").read_text())
    assert not Path(f"/proc/{pid}").exists(), "the plugin the runtime started was stopped and reaped with it"


def test_frames_go_out_in_chunks_upstreams_reader_accepts() -> None:
    ours, theirs = socket.socketpair()
    connection = MuxConnection(ours, lambda s, m, p: (0, "", b""), lambda: None)
    payload = b"x" * 20000
    sender = threading.Thread(target=lambda: connection._send(1, 1, 1, 0, payload))
    sender.start()
    received = 0
    while received < 20000 + 10:
        header = theirs.recv(MUX_HEADER.size, socket.MSG_WAITALL)
        conn, length = MUX_HEADER.unpack(header)
        assert conn == 1 and length <= CHUNK_WRITE
        received += len(theirs.recv(length, socket.MSG_WAITALL))
    sender.join(30)
    connection.close()
    theirs.close()


def test_a_socket_another_runtime_serves_is_refused_and_left_alone(tmp_path: Path) -> None:
    """containerd and cri-o serve NRI at the same default path: unlinking theirs cuts their plugins off."""
    path = tmp_path / "nri.sock"
    theirs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.bind(str(path))
    theirs.listen()
    try:
        plugins = SocketNriPlugins(
            str(path), registration_timeout=5.0, request_timeout=1.0, runtime_version="t"
        )
        with pytest.raises(SocketInUse, match=r"choose another nri\.socket_path"):
            plugins.start(lambda plugin: None, lambda plugin, updates, evictions: [])
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))  # still theirs
    finally:
        theirs.close()
    relay = NriRelay(
        SocketNriPlugins(str(path), registration_timeout=5.0, request_timeout=1.0, runtime_version="t")
    )
    relay.start(lambda: ([], []), lambda updates: [], lambda cid, reason: None)  # stale now: replaced
    relay.stop()
