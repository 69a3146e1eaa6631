"""RuntimeInfoService against fakes."""

from domain.runtime_info import HandlerFeatures, RuntimeInfoService
from tests.fakes.network import FakeNetwork
from tests.fakes.state_store import InMemoryStateStore


def _service(network: FakeNetwork, state: InMemoryStateStore) -> RuntimeInfoService:
    return RuntimeInfoService("1.2.3", "cgroupfs", network, state, [HandlerFeatures("runc")])


def test_network_condition_follows_the_network() -> None:
    network = FakeNetwork(ready=False)
    service = _service(network, InMemoryStateStore())
    conditions = {c.type: c for c in service.status().conditions}
    assert conditions["RuntimeReady"].status
    assert not conditions["NetworkReady"].status
    assert conditions["NetworkReady"].reason == "NetworkPluginNotReady"
    network.ready = True
    assert all(c.status for c in service.status().conditions)


def test_pod_cidr_is_kept_across_instances_and_empty_updates() -> None:
    state = InMemoryStateStore()
    _service(FakeNetwork(), state).update_pod_cidr("10.244.1.0/24")
    again = _service(FakeNetwork(), state)
    again.update_pod_cidr("")
    assert again.pod_cidr == "10.244.1.0/24"


def test_version() -> None:
    info = _service(FakeNetwork(), InMemoryStateStore()).version()
    assert (info.runtime_name, info.runtime_version, info.runtime_api_version) == ("pycrio", "1.2.3", "v1")
