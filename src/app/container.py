"""The dependency-injector container: the one place that chooses adapters.

`make_container(config)` wires the real adapters; tests build the same container and override providers
with the fakes from tests/fakes.
"""

import platform
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from dependency_injector import containers, providers

from adapters.cni.network import CniNetwork
from adapters.cri.images import ImageHandlers
from adapters.cri.runtime_info import RuntimeInfoHandlers
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_store import StateImageStore
from adapters.storage.image_users import RootfsImageUsers
from adapters.storage.overlay_layer_store import OverlayLayerStore
from app.config import Config, to_toml_dict
from domain.errors import Unavailable
from domain.images import ImageService
from domain.runtime_info import HandlerFeatures, RuntimeInfoService
from ports.image_store import ImageStore
from ports.image_users import ImageUsers
from ports.layer_store import LayerStore
from ports.registry import Descriptor, Platform, Registry, RegistryAuth, ResolvedImage


def package_version() -> str:
    try:
        return metadata.version("pycrio")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def _handler_features(config: Config) -> list[HandlerFeatures]:
    return [HandlerFeatures(name) for name in sorted(config.runtime.runtimes)] + [HandlerFeatures("")]


class _UnwiredRegistry:
    """Stands in until the httpx registry adapter (branch images-registry) is wired as `registry`."""

    def resolve(self, image: str, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        raise Unavailable(f"cannot pull {image}: no registry adapter is wired into this build")

    def open_blob(self, image: ResolvedImage, blob: Descriptor, auth: RegistryAuth | None) -> Iterator[bytes]:
        raise Unavailable(f"cannot fetch {blob.digest}: no registry adapter is wired into this build")


_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def host_platform() -> Platform:
    """The host as OCI platforms name it (Go's GOARCH names)."""
    machine = platform.machine()
    return Platform(
        os="linux", architecture=_GO_ARCH.get(machine, machine), variant="v7" if machine == "armv7l" else ""
    )


def _image_service(
    config: Config, registry: Registry, layers: LayerStore, images: ImageStore, users: ImageUsers
) -> ImageService:
    service = ImageService(
        registry,
        layers,
        images,
        users,
        pinned_images=config.image.pinned_images,
        pull_progress_timeout=config.image.pull_progress_timeout,
        platform=host_platform(),
    )
    service.recover()
    return service


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

    layer_store = providers.Singleton(
        OverlayLayerStore,
        root=providers.Callable(lambda c: Path(c.runtime.root) / "storage", config),
        state=state_store,
        command_timeout=providers.Callable(lambda c: c.runtime.subprocess_timeout, config),
    )
    image_store = providers.Singleton(StateImageStore, state=state_store)
    # The containers service may override this with its own records.
    image_users = providers.Singleton(RootfsImageUsers, layers=layer_store)
    registry = providers.Singleton(_UnwiredRegistry)
    images = providers.Singleton(
        _image_service,
        config=config,
        registry=registry,
        layers=layer_store,
        images=image_store,
        users=image_users,
    )
    image_handlers = providers.Singleton(ImageHandlers, service=images)

    runtime_servicer = providers.Singleton(runtime_service, groups=providers.List(runtime_info_handlers))
    image_servicer = providers.Singleton(image_service, groups=providers.List(image_handlers))

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
