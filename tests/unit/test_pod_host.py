"""The test-network helpers must only ever touch their own network: other runs share the machine."""

from pathlib import Path

from tests.pod_host import HostTestNetwork

SID = "ab" * 32


def _network() -> HostTestNetwork:
    network = HostTestNetwork(Path("/c"), "pcpodaaaa", "10.86.22.0/24", Path("/d"), "pcpod-aaaa")
    network.sandbox_ids.add(SID)
    return network


def test_prefix_is_the_three_octets_of_the_subnet() -> None:
    assert _network().prefix == "10.86.22"


def test_rules_of_other_networks_are_not_ours() -> None:
    network = _network()
    assert not network.mentions_pod("-A POSTROUTING -s 10.86.224.3/32 -j CNI-x")
    assert not network.mentions_pod("-A POSTROUTING -s 10.86.2.3/32 -j CNI-x")
    assert not network.mentions_pod(
        '-A CNI-x -m comment --comment "name: \\"pcpod-bbbb\\" id: \\"cd\\"" -j ACCEPT'
    )


def test_our_rules_are_found_by_address_name_or_id() -> None:
    network = _network()
    assert network.mentions_pod("-A POSTROUTING -s 10.86.22.3/32 -j CNI-x")
    assert network.mentions_pod(
        '-A CNI-x -m comment --comment "name: \\"pcpod-aaaa\\" id: \\"zz\\"" -j ACCEPT'
    )
    assert network.mentions_pod(f"-A CNI-HOSTPORT-DNAT -m comment --comment {SID} -j CNI-DN-1")
