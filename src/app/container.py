"""The dependency-injector container: the one place that chooses adapters.

`make_container(config)` wires the real adapters; tests build the same container and override providers
with the fakes from tests/fakes.
"""

from importlib import metadata
from pathlib import Path

from dependency_injector import containers, providers

from adapters.cni.network import CniNetwork
from adapters.cri.runtime_info import RuntimeInfoHandlers
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.state.file_store import AtomicFileStateStore
from app.config import Config, to_toml_dict
from domain.runtime_info import HandlerFeatures, RuntimeInfoService


def package_version() -> str:
    try:
        return metadata.version("pycrio")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def _handler_features(config: Config) -> list[HandlerFeatures]:
    return [HandlerFeatures(name) for name in sorted(config.runtime.runtimes)] + [HandlerFeatures("")]


class Container(containers.DeclarativeContainer):
    config = providers.Dependency(instance_of=Config)

    state_store = providers.Singleton(
        AtomicFileStateStore, root=providers.Callable(lambda c: Path(c.runtime.root) / "state", config)
    )
    network = providers.Singleton(
        CniNetwork,
        conf_dir=providers.Callable(lambda c: Path(c.network.cni_conf_dir), config),
        plugin_dirs=providers.Callable(lambda c: [Path(d) for d in c.network.cni_plugin_dirs], config),
    )

    runtime_info = providers.Singleton(
        RuntimeInfoService,
        runtime_version=providers.Callable(package_version),
        cgroup_driver=providers.Callable(lambda c: c.runtime.cgroup_driver, config),
        network=network,
        state=state_store,
        handlers=providers.Callable(_handler_features, config),
    )

    runtime_info_handlers = providers.Singleton(
        RuntimeInfoHandlers,
        service=runtime_info,
        effective_config=providers.Callable(lambda c: lambda: to_toml_dict(c), config),
    )

    runtime_servicer = providers.Singleton(runtime_service, groups=providers.List(runtime_info_handlers))
    image_servicer = providers.Singleton(image_service, groups=providers.List())

    server = providers.Singleton(
        CriServer,
        socket_path=providers.Callable(lambda c: c.socket_path, config),
        socket_mode=providers.Callable(lambda c: int(c.grpc.socket_mode, 8), config),
        runtime_servicer=runtime_servicer,
        image_servicer=image_servicer,
        max_workers=providers.Callable(lambda c: c.grpc.max_workers, config),
    )


def make_container(config: Config) -> Container:
    return Container(config=config)
