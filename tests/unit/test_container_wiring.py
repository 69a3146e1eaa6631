"""The real dependency-injector container, built with fakes where a test wants them."""

from pathlib import Path

import pytest
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


def test_the_image_service_reads_the_configured_registries_conf(tmp_path: Path) -> None:
    from adapters.registry.deferred import DeferredRegistry
    from domain.errors import FailedPrecondition

    conf_dir = tmp_path / "registries.conf.d"
    conf_dir.mkdir()
    (conf_dir / "01-block.conf").write_text('[[registry]]\nlocation = "blocked.example"\nblocked = true\n')
    config = load(
        None,
        overrides=[
            f'runtime.root="{tmp_path / "root"}"',
            f'image.registries_conf="{tmp_path / "absent.conf"}"',
            f'image.registries_conf_dir="{conf_dir}"',
        ],
    )
    container = make_container(config)
    registry = container.registry()
    assert isinstance(registry, DeferredRegistry)
    try:
        with pytest.raises(FailedPrecondition, match="blocked"):
            container.images().pull("blocked.example/app")
        assert not registry.built  # no source was tried, so no HTTP client was made
    finally:
        registry.close()
