"""What CniNetwork hands each plugin (config, prevResult, runtimeConfig, CNI_ARGS) and how it reads
results, checked with small shell-script plugins that record their input."""

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.cni.network import CniNetwork
from adapters.cni.result import parse_result
from domain.errors import DeadlineExceeded, Internal, Unavailable
from ports.network import BandwidthLimits, DnsSettings, PodNetworkRequest, PortMapping

RESULT_1_0 = {
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "cni0", "mac": "aa:aa:aa:aa:aa:aa"},
        {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
        {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/netns/x"},
    ],
    "ips": [
        {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2},
        {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2},
        {"address": "10.1.0.1/24", "interface": 0},
    ],
}


def _plugin(
    bin_dir: Path, name: str, log: Path, result: Mapping[str, object] | None, exit_code: int = 0
) -> None:
    bin_dir.mkdir(exist_ok=True)
    body = json.dumps(result) if result is not None else ""
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'{{ echo "$CNI_COMMAND {name} $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME $CNI_ARGS"; cat; echo; }}'
        f" >> {log}\n"
        f"echo '{body}'\n"
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)


def _network(tmp_path: Path, plugins: list[dict[str, object]], version: str = "1.0.0") -> CniNetwork:
    conf = tmp_path / "net.d"
    conf.mkdir()
    (conf / "10-t.conflist").write_text(json.dumps({"cniVersion": version, "name": "t", "plugins": plugins}))
    return CniNetwork(conf, [tmp_path / "bin"], timeout=10)


def _calls(log: Path) -> list[tuple[str, dict[str, object]]]:
    lines = log.read_text().splitlines()
    return [(lines[i], json.loads(lines[i + 1])) for i in range(0, len(lines), 2)]


REQUEST = PodNetworkRequest(
    sandbox_id="abc123",
    netns_path="/run/netns/x",
    pod_name="web",
    pod_namespace="prod",
    pod_uid="uid-1",
    port_mappings=[PortMapping("tcp", 80, 8080, "127.0.0.1"), PortMapping("udp", 53)],
    dns=DnsSettings(servers=["10.0.0.10"], searches=["svc"], options=["ndots:5"]),
)


def test_add_chains_prev_result_and_passes_capabilities(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _plugin(tmp_path / "bin", "first", log, RESULT_1_0)
    _plugin(tmp_path / "bin", "second", log, RESULT_1_0)
    network = _network(
        tmp_path,
        [
            {"type": "first", "capabilities": {"dns": True}},
            {"type": "second", "capabilities": {"portMappings": True}},
        ],
    )
    attachment = network.setup(REQUEST)
    (head1, conf1), (_, conf2) = _calls(log)
    assert head1 == (
        "ADD first abc123 /run/netns/x eth0 IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web;"
        "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=uid-1"
    )
    assert conf1["name"] == "t" and conf1["cniVersion"] == "1.0.0"
    assert "prevResult" not in conf1
    assert conf1["runtimeConfig"] == {
        "dns": {"servers": ["10.0.0.10"], "searches": ["svc"], "options": ["ndots:5"]}
    }
    assert conf2["prevResult"] == RESULT_1_0
    assert conf2["runtimeConfig"] == {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]
    }
    assert attachment.ips == ["10.1.0.5", "fd00::5"]
    assert [i.name for i in attachment.interfaces] == ["eth0"]

    log.unlink()
    network.teardown(REQUEST, attachment)
    (del2, dconf2), (del1, _) = _calls(log)
    assert del2.startswith("DEL second") and del1.startswith("DEL first")
    assert dconf2["prevResult"] == RESULT_1_0


def test_a_failed_add_is_undone_with_del(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _plugin(tmp_path / "bin", "good", log, RESULT_1_0)
    _plugin(tmp_path / "bin", "bad", log, {"code": 11, "msg": "no luck", "details": "really"}, exit_code=1)
    network = _network(tmp_path, [{"type": "good"}, {"type": "bad"}])
    with pytest.raises(Internal, match=r"bad ADD failed .*code 11.*no luck: really"):
        network.setup(REQUEST)
    commands = [head.split()[:2] for head, _ in _calls(log)]
    assert commands == [["ADD", "good"], ["ADD", "bad"], ["DEL", "bad"], ["DEL", "good"]]


def test_del_uses_the_config_add_used(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _plugin(tmp_path / "bin", "first", log, RESULT_1_0)
    network = _network(tmp_path, [{"type": "first", "marker": "at-add"}])
    attachment = network.setup(REQUEST)
    (tmp_path / "net.d" / "10-t.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "first", "marker": "changed"}]})
    )
    log.unlink()
    network.teardown(REQUEST, attachment)
    ((_, conf),) = _calls(log)
    assert conf["marker"] == "at-add"


def test_check_is_skipped_before_spec_0_4_0(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _plugin(tmp_path / "bin", "first", log, RESULT_1_0)
    network = _network(tmp_path, [{"type": "first"}], version="0.3.1")
    attachment = network.setup(REQUEST)
    log.unlink()
    network.check(REQUEST, attachment)
    assert not log.exists()


def test_a_missing_plugin_is_unavailable(tmp_path: Path) -> None:
    os.makedirs(tmp_path / "bin")
    network = _network(tmp_path, [{"type": "nowhere"}])
    with pytest.raises(Unavailable, match="nowhere"):
        network.setup(REQUEST)


def test_result_0_4_0_with_versions_and_no_interface_index() -> None:
    addresses, interfaces = parse_result(
        {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.2.0.9/16", "gateway": "10.2.0.1"}]}
    )
    assert [a.ip for a in addresses] == ["10.2.0.9"]
    assert interfaces == []


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ({"ips": 5}, "malformed ips: 5"),
        ({"ips": [{"address": "not-an-ip/24"}]}, "'not-an-ip/24' does not appear to be an IPv4 or IPv6"),
        ({"ips": [{"address": "10.1.0.5/24", "gateway": "x"}]}, "'x' does not appear to be an IPv4 or IPv6"),
    ],
)
def test_a_result_whose_addresses_are_not_addresses_is_refused(result: dict[str, object], words: str) -> None:
    """The last plugin of a chain is read by no other: what becomes the pod's IP must be one (before, `ips`
    that was not a list raised TypeError, INTERNAL with no word of CNI, and any string became the pod IP)."""
    with pytest.raises(Internal, match=r"^CNI result has (a )?malformed") as caught:
        parse_result({"cniVersion": "1.0.0", **result})
    assert words in str(caught.value)


def test_a_wedged_del_is_cut_at_the_callers_deadline(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _plugin(tmp_path / "bin", "first", log, RESULT_1_0)
    network = _network(tmp_path, [{"type": "first"}])
    attachment = network.setup(REQUEST)
    wedged = tmp_path / "bin" / "first"
    wedged.write_text("#!/bin/sh\nexec sleep 30\n")
    with pytest.raises(DeadlineExceeded):
        network.teardown(REQUEST, attachment, timeout=0.5)


def test_bandwidth_capability_gets_the_rates(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _plugin(tmp_path / "bin", "shaper", log, RESULT_1_0)
    network = _network(tmp_path, [{"type": "shaper", "capabilities": {"bandwidth": True}}])
    network.setup(replace(REQUEST, bandwidth=BandwidthLimits(ingress_rate=10_000_000)))
    ((_, conf),) = _calls(log)
    assert conf["runtimeConfig"] == {"bandwidth": {"ingressRate": 10_000_000, "ingressBurst": 2**32 - 1}}
