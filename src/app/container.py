"""The dependency-injector container: the one place that chooses adapters.

`make_container(config)` wires the real adapters; tests build the same container and override providers
with the fakes from tests/fakes.
"""

import time
from importlib import metadata
from pathlib import Path

from dependency_injector import containers, providers

from adapters.cni.network import CniNetwork
from adapters.cri.runtime_info import RuntimeInfoHandlers
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.cri.streaming import StreamingHandlers
from adapters.state.file_store import AtomicFileStateStore
from adapters.streaming.netns_port_forwarder import NetnsPortForwarder
from adapters.streaming.oci_container_streams import OciContainerStreams
from adapters.streaming.server import StreamingServer
from adapters.streaming.until_merged import NoStreamTargets
from app.config import Config, to_toml_dict
from domain.runtime_info import HandlerFeatures, RuntimeInfoService
from domain.streaming import RequestCache, StreamingService


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

    # Streaming (Exec/Attach/PortForward). stream_targets and container_io are replaced by adapters over
    # the containers and pods services when those branches are merged.
    stream_targets = providers.Singleton(NoStreamTargets)
    container_io = providers.Singleton(NoStreamTargets)
    container_streams = providers.Singleton(
        OciContainerStreams,
        lookup=container_io,
        scratch_dir=providers.Callable(lambda c: Path(c.runtime.run_dir) / "exec", config),
    )
    port_forwarder = providers.Singleton(NetnsPortForwarder, netns_of=stream_targets.provided.sandbox_netns)
    streaming_cache = providers.Singleton(
        RequestCache, ttl=providers.Callable(lambda c: c.streaming.token_ttl, config), clock=time.monotonic
    )
    streaming_server = providers.Singleton(
        StreamingServer,
        address=providers.Callable(lambda c: c.streaming.address, config),
        port=providers.Callable(lambda c: c.streaming.port, config),
        cache=streaming_cache,
        container_streams=container_streams,
        port_forwarder=port_forwarder,
        idle_timeout=providers.Callable(lambda c: c.streaming.idle_timeout, config),
        tls_cert=providers.Callable(lambda c: c.streaming.tls_cert, config),
        tls_key=providers.Callable(lambda c: c.streaming.tls_key, config),
    )
    streaming_service = providers.Singleton(
        StreamingService,
        cache=streaming_cache,
        targets=stream_targets,
        base_url=providers.Callable(lambda server: lambda: server.base_url, streaming_server),
    )
    streaming_handlers = providers.Singleton(StreamingHandlers, service=streaming_service)

    runtime_servicer = providers.Singleton(
        runtime_service, groups=providers.List(runtime_info_handlers, streaming_handlers)
    )
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
