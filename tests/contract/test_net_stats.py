"""The NetworkStatsReader contract: the fake, and the netns adapter on real namespaces with real traffic."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from adapters.netns.stats import NetnsStatsReader, parse_net_dev
from domain.errors import NotFound
from ports.net_stats import InterfaceCounters, NetworkStatsReader
from tests.fakes.net_stats import FakeNetworkStatsReader
from tests.host.netns import LinkedNamespaces, linked_namespaces

DATA = Path(__file__).parent / "data"


class Traffic(Protocol):
    def __call__(self, datagrams: int) -> None: ...


@dataclass
class Subject:
    reader: NetworkStatsReader
    sender: str  # netns path of the sending side
    receiver: str
    send: Traffic


@pytest.fixture(scope="module")
def real_pair() -> Iterator[LinkedNamespaces]:
    with linked_namespaces() as pair:
        yield pair


@pytest.fixture(params=["fake", "netns"])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "netns":
        pair: LinkedNamespaces = request.getfixturevalue("real_pair")
        return Subject(NetnsStatsReader(), pair.left_path, pair.right_path, pair.send_udp)
    fake = FakeNetworkStatsReader()
    fake.add("/run/netns/a", "eth0")
    fake.add("/run/netns/b", "eth0")

    def send(datagrams: int) -> None:
        for _ in range(datagrams):
            fake.transfer("/run/netns/a", "eth0", sent=1042)
            fake.transfer("/run/netns/b", "eth0", received=1042)

    return Subject(fake, "/run/netns/a", "/run/netns/b", send)


def by_name(interfaces: list[InterfaceCounters]) -> dict[str, InterfaceCounters]:
    return {i.name: i for i in interfaces}


def test_namespace_lists_its_own_interfaces(subject: Subject) -> None:
    names = set(by_name(subject.reader.read(subject.sender)))
    assert {"lo", "eth0"} <= names
    assert not any(name.startswith("pcm") for name in names)  # the host's side is not visible


def test_traffic_moves_both_ends_counters(subject: Subject) -> None:
    sent_before = by_name(subject.reader.read(subject.sender))["eth0"]
    received_before = by_name(subject.reader.read(subject.receiver))["eth0"]
    subject.send(20)
    sent = by_name(subject.reader.read(subject.sender))["eth0"]
    received = by_name(subject.reader.read(subject.receiver))["eth0"]
    assert sent.tx_bytes >= sent_before.tx_bytes + 20 * 1000
    assert sent.tx_packets >= sent_before.tx_packets + 20
    assert received.rx_bytes >= received_before.rx_bytes + 20 * 1000
    assert received.rx_packets >= received_before.rx_packets + 20
    assert sent.tx_errors == sent_before.tx_errors


def test_missing_namespace_is_not_found(subject: Subject) -> None:
    with pytest.raises(NotFound):
        subject.reader.read("/run/netns/pcmon-does-not-exist")


def test_own_namespace_has_loopback(subject: Subject) -> None:
    assert "lo" in by_name(subject.reader.read(None))


def test_a_file_that_is_no_namespace_is_not_found(tmp_path: Path) -> None:
    plain = tmp_path / "not-a-netns"
    plain.write_text("")
    with pytest.raises(NotFound):
        NetnsStatsReader().read(str(plain))


def test_parser_reads_a_recorded_table() -> None:
    got = by_name(parse_net_dev((DATA / "proc-net-dev.txt").read_text()))
    assert set(got) == {"lo", "eth0"}
    assert got["eth0"] == InterfaceCounters("eth0", 1234567, 890, 1, 2, 7654321, 456, 3, 4)
