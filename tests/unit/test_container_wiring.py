"""The real dependency-injector container, built with fakes where a test wants them."""

from pathlib import Path

from dependency_injector import providers

from app.config import load
from app.container import make_container
from tests.fakes.network import FakeNetwork
from tests.fakes.state_store import InMemoryStateStore


def test_container_builds_the_servicers_with_fakes(tmp_path: Path) -> None:
    config = load(None, overrides=[f'runtime.root="{tmp_path}"'])
    container = make_container(config)
    container.network.override(providers.Object(FakeNetwork(ready=False)))
    container.state_store.override(providers.Object(InMemoryStateStore()))
    status = container.runtime_info().status()
    assert [c.status for c in status.conditions] == [True, False]
    assert callable(container.runtime_servicer().Version)
