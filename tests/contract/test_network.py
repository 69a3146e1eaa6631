"""The Network contract, run against FakeNetwork and CniNetwork with the real plugins of /usr/lib/cni
(spec versions 1.0.0 and 0.4.0) on a private bridge."""

import ipaddress
import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.cni.network import CniNetwork
from adapters.namespaces.pinned import PinnedNamespaces
from domain.errors import PycrioError
from ports.namespaces import NamespaceRequest
from ports.network import BandwidthLimits, Network, PodNetworkRequest, PortMapping
from tests.fakes.network import FakeNetwork
from tests.pod_host import HostTestNetwork, cleanup, leftovers, make_test_network, veths_on

PLUGIN_DIRS = [Path("/usr/lib/cni")]


@dataclass
class Subject:
    network: Network
    subnet: str
    namespaces: PinnedNamespaces | None
    host: HostTestNetwork | None
    break_it: Callable[[], None]

    def netns(self, sandbox_id: str) -> str:
        if self.host is not None:
            self.host.sandbox_ids.add(sandbox_id)
        if self.namespaces is None:
            return f"/fake/netns/{sandbox_id}"
        return self.namespaces.create(sandbox_id, NamespaceRequest(ipc=False, uts=False)).network

    def leaks(self) -> list[str]:
        return leftovers(self.host) if self.host is not None else []


@pytest.fixture(params=["fake", "cni-1.0.0", "cni-0.4.0"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "fake":
        fake = FakeNetwork(subnet="10.88.0.0/24")

        def break_fake() -> None:
            fake.fail_setup = True

        yield Subject(fake, "10.88.0.0/24", None, None, break_fake)
        return
    host = make_test_network(tmp_path, cni_version=request.param.removeprefix("cni-"))
    namespaces = PinnedNamespaces(tmp_path / "run", timeout=30)
    real = CniNetwork(host.conf_dir, PLUGIN_DIRS, timeout=60)

    def break_real() -> None:
        conf = host.conf_dir / "10-pcpod.conflist"
        data = json.loads(conf.read_text())
        # The bridge and host-local run, then a missing plugin fails the ADD: all of it must be undone.
        data["plugins"].insert(1, {"type": "pcpod-no-such-plugin"})
        conf.write_text(json.dumps(data))

    try:
        yield Subject(real, host.subnet, namespaces, host, break_real)
    finally:
        for sandbox_id in host.sandbox_ids:
            namespaces.remove(sandbox_id)
        cleanup(host)


def _request(subject: Subject, name: str, **extra: object) -> PodNetworkRequest:
    sandbox_id = secrets.token_hex(32)
    return PodNetworkRequest(
        sandbox_id=sandbox_id,
        netns_path=subject.netns(sandbox_id),
        pod_name=name,
        pod_namespace="contract",
        pod_uid=f"uid-{name}",
        **extra,  # type: ignore[arg-type]
    )


def test_ready_with_a_usable_config(subject: Subject) -> None:
    assert subject.network.readiness().ready


def test_setup_gives_each_pod_its_own_address_in_the_subnet(subject: Subject) -> None:
    first, second = _request(subject, "a"), _request(subject, "b")
    a = subject.network.setup(first)
    b = subject.network.setup(second)
    subnet = ipaddress.ip_network(subject.subnet)
    assert ipaddress.ip_address(a.ips[0]) in subnet
    assert ipaddress.ip_address(b.ips[0]) in subnet
    assert a.ips != b.ips
    assert a.addresses[0].address.endswith(f"/{subnet.prefixlen}")
    assert [i.name for i in a.interfaces] == ["eth0"]
    assert a.interfaces[0].sandbox == first.netns_path
    subject.network.teardown(first, a)
    subject.network.teardown(second, b)
    assert subject.leaks() == []


def test_check_passes_on_a_healthy_pod(subject: Subject) -> None:
    request = _request(subject, "c")
    attachment = subject.network.setup(request)
    subject.network.check(request, attachment)
    subject.network.teardown(request, attachment)


def test_teardown_is_idempotent_and_frees_the_address(subject: Subject) -> None:
    request = _request(subject, "d")
    attachment = subject.network.setup(request)
    if subject.host is not None:
        assert any(leak.startswith("veth") for leak in subject.leaks())  # the leak report sees pods
    subject.network.teardown(request, attachment)
    subject.network.teardown(request, attachment)
    assert subject.leaks() == []


def test_teardown_without_the_attachment_undoes_a_cut_short_setup(subject: Subject) -> None:
    request = _request(subject, "e", port_mappings=[PortMapping("tcp", 80, 18080 + secrets.randbelow(1000))])
    subject.network.setup(request)
    subject.network.teardown(request, None)  # what a restart does after a crash during ADD
    assert subject.leaks() == []


def test_a_failed_setup_leaves_nothing(subject: Subject) -> None:
    subject.break_it()
    request = _request(subject, "f")
    with pytest.raises(PycrioError):
        subject.network.setup(request)
    assert subject.leaks() == []


def test_addresses_are_reused_after_teardown(subject: Subject) -> None:
    seen = set()
    for i in range(3):
        request = _request(subject, f"r{i}")
        attachment = subject.network.setup(request)
        seen.add(attachment.ips[0])
        subject.network.teardown(request, attachment)
    assert subject.leaks() == []


def test_dual_stack_gives_an_address_of_each_family(tmp_path: Path) -> None:
    host = make_test_network(tmp_path, dual_stack=True)
    namespaces = PinnedNamespaces(tmp_path / "run", timeout=30)
    network = CniNetwork(host.conf_dir, PLUGIN_DIRS, timeout=60)
    sandbox_id = secrets.token_hex(32)
    host.sandbox_ids.add(sandbox_id)
    try:
        netns = namespaces.create(sandbox_id, NamespaceRequest(ipc=False, uts=False)).network
        request = PodNetworkRequest(sandbox_id, netns, "dual", "contract", "uid-dual")
        attachment = network.setup(request)
        v4, v6 = attachment.ips
        assert ipaddress.ip_address(v4) in ipaddress.ip_network(host.subnet)
        assert ipaddress.ip_address(v6) in ipaddress.ip_network(host.subnet6)
        network.check(request, attachment)
        network.teardown(request, attachment)
        assert leftovers(host) == []
    finally:
        namespaces.remove(sandbox_id)
        cleanup(host)


def test_bandwidth_annotations_shape_the_pod_with_the_real_plugin(tmp_path: Path) -> None:
    host = make_test_network(tmp_path)
    conf = host.conf_dir / "10-pcpod.conflist"
    data = json.loads(conf.read_text())
    data["plugins"].append({"type": "bandwidth", "capabilities": {"bandwidth": True}})
    conf.write_text(json.dumps(data))
    namespaces = PinnedNamespaces(tmp_path / "run", timeout=30)
    network = CniNetwork(host.conf_dir, PLUGIN_DIRS, timeout=60)
    sandbox_id = secrets.token_hex(32)
    host.sandbox_ids.add(sandbox_id)
    ifbs_before = {link for link in _links() if link.startswith("bwp")}
    try:
        netns = namespaces.create(sandbox_id, NamespaceRequest(ipc=False, uts=False)).network
        request = PodNetworkRequest(
            sandbox_id, netns, "shaped", "contract", "uid-s", bandwidth=BandwidthLimits(8_000_000, 16_000_000)
        )
        attachment = network.setup(request)
        (veth,) = veths_on(host.bridge)
        qdiscs = subprocess.run(["tc", "qdisc", "show", "dev", veth], capture_output=True, text=True).stdout
        assert "tbf" in qdiscs
        ifbs = {link for link in _links() if link.startswith("bwp")} - ifbs_before
        assert len(ifbs) == 1  # the plugin's ifb device for egress shaping
        network.teardown(request, attachment)
        assert leftovers(host) == []
        assert not ifbs & set(_links())
    finally:
        namespaces.remove(sandbox_id)
        cleanup(host)


def _links() -> list[str]:
    return [
        line.split(":")[1].strip().split("@")[0]
        for line in subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    ]
