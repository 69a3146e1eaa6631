"""CNI plugins that fail, die or hang, chained after the real bridge and host-local plugins.

A wrapper plugin in a private plugin dir (`pcfault`) misbehaves on the CNI command its file names. An ADD
that fails must be undone (veth, address, iptables rules), one that hangs must be cut at the adapter's
timeout with the plugin killed, and a DEL that keeps failing must end in a clear error at the caller's
deadline, after which a healthy DEL still frees everything.
"""

import contextlib
import json
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.cni.network import CniNetwork
from adapters.namespaces.pinned import PinnedNamespaces
from domain.errors import DeadlineExceeded, Internal, PycrioError
from ports.namespaces import NamespaceRequest
from ports.network import PodNetworkRequest
from tests.e2e.containers_support import wait_until
from tests.fault_programs import hung_pids, install_cni_plugin
from tests.pod_host import HostTestNetwork, cleanup, leftovers, make_test_network

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

TIMEOUT = 5  # the adapter's per-call timeout; a healthy bridge ADD takes well under it even when loaded


@dataclass
class Node:
    host: HostTestNetwork
    network: CniNetwork
    namespaces: PinnedNamespaces
    faults: Path
    sandbox_ids: list[str]

    def inject(self, command: str, how: str) -> None:
        (self.faults / "fault").write_text(f"{command} {how}\n")

    def heal(self) -> None:
        (self.faults / "fault").unlink(missing_ok=True)

    def request(self) -> PodNetworkRequest:
        sandbox_id = secrets.token_hex(32)
        self.sandbox_ids.append(sandbox_id)
        netns = self.namespaces.create(sandbox_id, NamespaceRequest(ipc=False, uts=False)).network
        return PodNetworkRequest(
            sandbox_id=sandbox_id, netns_path=netns, pod_name="f", pod_namespace="faults", pod_uid="uid-f"
        )

    def hung_gone(self) -> None:
        pids = hung_pids(self.faults)
        assert pids, "the plugin never hung"
        gone = lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids)  # noqa: E731
        wait_until(gone, what="the hung plugin to be reaped")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    host = make_test_network(tmp_path, portmap=False)
    faults = tmp_path / "faults"
    faults.mkdir()
    (conf,) = host.conf_dir.glob("*.conflist")
    data = json.loads(conf.read_text())
    data["plugins"].insert(1, {"type": install_cni_plugin(faults)})
    conf.write_text(json.dumps(data))
    namespaces = PinnedNamespaces(tmp_path / "run", timeout=30)
    network = CniNetwork(host.conf_dir, [faults, Path("/usr/lib/cni")], timeout=TIMEOUT)
    node = Node(host, network, namespaces, faults, [])
    try:
        yield node
    finally:
        node.heal()
        for pid in hung_pids(faults):  # a failed test's hung plugin
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for sandbox_id in node.sandbox_ids:
            namespaces.remove(sandbox_id)
        cleanup(host)


@pytest.mark.parametrize("how", ["fail", "kill"])
def test_a_failing_add_is_undone_and_says_why(node: Node, how: str) -> None:
    node.inject("ADD", how)
    with pytest.raises(Internal) as caught:
        node.network.setup(node.request())
    if how == "fail":
        assert "injected: pcfault refused ADD" in str(caught.value)
    assert leftovers(node.host) == []
    node.heal()
    request = node.request()
    node.network.setup(request)  # the address the failed ADD took is free again
    node.network.teardown(request, None)
    assert leftovers(node.host) == []


def test_a_hanging_add_is_cut_at_the_timeout_killed_and_undone(node: Node) -> None:
    node.inject("ADD", "hang")
    with pytest.raises(DeadlineExceeded, match="pcfault"):
        node.network.setup(node.request())
    node.hung_gone()
    assert leftovers(node.host) == []


@pytest.mark.parametrize("how", ["fail", "hang"])
def test_a_del_that_keeps_failing_ends_at_the_deadline_then_one_frees_all(node: Node, how: str) -> None:
    request = node.request()
    attachment = node.network.setup(request)
    node.inject("DEL", how)
    with pytest.raises(PycrioError) as caught:
        node.network.teardown(request, attachment, timeout=TIMEOUT)
    assert isinstance(caught.value, DeadlineExceeded if how == "hang" else Internal)
    if how == "hang":
        node.hung_gone()
    node.heal()
    node.network.teardown(request, attachment)  # the kubelet's retry
    assert leftovers(node.host) == []
