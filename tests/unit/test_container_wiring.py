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


def test_registry_provider_reads_the_configured_registries_conf(tmp_path: Path) -> None:
    from adapters.registry.deferred import DeferredRegistry
    from domain.errors import FailedPrecondition
    from ports.registry import Platform

    conf_dir = tmp_path / "registries.conf.d"
    conf_dir.mkdir()
    (conf_dir / "01-block.conf").write_text('[[registry]]\nlocation = "blocked.example"\nblocked = true\n')
    config = load(
        None,
        overrides=[
            f'image.registries_conf="{tmp_path / "absent.conf"}"',
            f'image.registries_conf_dir="{conf_dir}"',
        ],
    )
    registry = make_container(config).registry()
    assert isinstance(registry, DeferredRegistry)
    assert not registry.built  # no HTTP client until the first pull
    try:
        with pytest.raises(FailedPrecondition, match="blocked"):
            registry.resolve("blocked.example/app", None, Platform())
    finally:
        registry.close()


def test_every_limit_key_reaches_its_component(tmp_path: Path) -> None:
    """No limit is accepted from the config and then ignored (docs/security.md lists them)."""
    from adapters.registry.transport import RegistryLimits
    from adapters.storage.limits import UnpackLimits

    config = load(
        None,
        overrides=[
            f'runtime.root="{tmp_path / "root"}"',
            f'runtime.run_dir="{tmp_path / "run"}"',
            "streaming.max_connections=7",
            "grpc.max_workers=5",
            "grpc.max_streams=3",
            "image.max_manifest_bytes=11",
            "image.max_config_bytes=12",
            "image.max_token_bytes=13",
            "image.max_error_body_bytes=14",
            "image.registry_request_deadline=15.0",
            "image.max_layer_bytes=16",
            "image.max_layer_ratio=17",
            "image.max_image_bytes=18",
            "image.min_free_bytes=19",
        ],
    )
    container = make_container(config)
    container.state_store.override(providers.Object(InMemoryStateStore()))
    assert container.layer_store()._limits == UnpackLimits(16, 17, 19)
    assert container.images()._max_image_bytes == 18
    assert container.streaming_server()._max_connections == 7
    registry = container.registry()
    try:
        built = registry._registry()  # what the first pull builds
        assert built._limits == RegistryLimits(11, 12, 13, 14, 15.0)  # type: ignore[attr-defined]
    finally:
        registry.close()
    server = container.server()
    assert server._server._state.thread_pool._max_workers == 5 + 3
