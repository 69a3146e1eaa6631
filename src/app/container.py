"""The dependency-injector container: the one place that chooses adapters.

`make_container(config)` wires the real adapters; tests build the same container and override providers
with the fakes from tests/fakes.
"""

import functools
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from dependency_injector import containers, providers

from adapters.cgroups.cgroupfs import CgroupFs
from adapters.cgroups.detect import host_cgroup_reader
from adapters.cgroups.hugepages import SysfsHugePages
from adapters.cni.network import CniNetwork
from adapters.containers.pod_containers import ServicePodContainers
from adapters.containers.stream_targets import ServiceStreamTargets
from adapters.containers.wiring import build_container_service
from adapters.cri.container_events import ContainerExits, ContainerLifecycleEvents, LifecycleLedger
from adapters.cri.containers import ContainerHandlers
from adapters.cri.events import ContainerEventHandlers, CriEventPublisher, EventStreams
from adapters.cri.handler_statuses import HandlerStatuses
from adapters.cri.images import ImageHandlers
from adapters.cri.pod_metrics import PodMetricsHandlers
from adapters.cri.runtime_info import RuntimeInfoHandlers
from adapters.cri.sandbox_events import SandboxEventHandlers
from adapters.cri.sandboxes import SandboxHandlers
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.cri.stats import StatsHandlers
from adapters.cri.streaming import StreamingHandlers
from adapters.diskusage.walk import WalkingDiskUsage
from adapters.exits.watcher import ExitFileWatcher
from adapters.metrics.disabled import DiscardedMetrics, NoMetricsEndpoint
from adapters.metrics.pulls import MeteredRegistry, PullMetricsHandlers
from adapters.namespaces.catatonit import CatatonitInfra
from adapters.namespaces.pinned import PinnedNamespaces
from adapters.netns.stats import NetnsStatsReader
from adapters.podfiles.on_disk import PodFilesOnDisk
from adapters.procfs.process_stats import ProcfsProcessStats
from adapters.registry.conf_files import load_registries_conf
from adapters.registry.deferred import DeferredRegistry
from adapters.registry.host_platform import host_platform
from adapters.runc.features import supports_recursive_read_only
from adapters.state.file_store import AtomicFileStateStore
from adapters.stats.collector import StatsCollector
from adapters.storage.image_store import StateImageStore
from adapters.storage.image_users import RootfsImageUsers
from adapters.storage.limits import UnpackLimits
from adapters.storage.overlay_layer_store import OverlayLayerStore
from adapters.streaming.netns_port_forwarder import NetnsPortForwarder
from adapters.streaming.oci_container_streams import OciContainerStreams
from adapters.streaming.server import StreamingServer
from adapters.system.clock import SystemClock
from adapters.trust.files import LocalTrustFiles
from adapters.trust.gpg import GpgVerifier
from adapters.trust.lookaside import LookasideStore
from adapters.trust.sigstore import SigstoreVerifier
from adapters.trust.verifier import OfflineSignatureVerifier
from adapters.workloads.services import ServiceWorkloads
from app.config import Config, to_toml_dict
from app.version import VERSION
from domain.events import Broadcaster
from domain.images import ImageService
from domain.registries_conf import RegistriesConf
from domain.runtime_info import HandlerFeatures, RuntimeInfoService
from domain.sandboxes import SandboxService, SandboxSettings
from domain.stats import StatsService
from domain.streaming import RequestCache, StreamingService
from domain.trust import ImageTrust, TrustSettings
from ports.image_store import ImageStore
from ports.image_users import ImageUsers
from ports.layer_store import LayerStore
from ports.metrics import RuntimeMetrics
from ports.registry import Registry


def package_version() -> str:
    return VERSION


def _log_stats_error(what: str, error: Exception) -> None:
    structlog.get_logger("pycrio.stats").warning("stats read failed", what=what, error=str(error))


def _handler_features(config: Config) -> list[HandlerFeatures]:
    runtimes = config.runtime.runtimes
    rro = {name: supports_recursive_read_only(handler.path) for name, handler in runtimes.items()}
    default = rro.get(config.runtime.default_runtime, False)
    return [HandlerFeatures(name, recursive_read_only_mounts=rro[name]) for name in sorted(runtimes)] + [
        HandlerFeatures("", recursive_read_only_mounts=default)
    ]


def _runtime_metrics(config: Config) -> RuntimeMetrics:
    """Prometheus only when metrics are served: imported here so a daemon without them never loads it."""
    if not config.metrics.enabled:
        return DiscardedMetrics()
    from adapters.metrics.prometheus import PrometheusMetrics

    return PrometheusMetrics()


def _metrics_endpoint(config: Config, metrics: RuntimeMetrics) -> object:
    """The /metrics endpoint, when enabled, over the Prometheus registry (only that one can be served)."""
    if not config.metrics.enabled:
        return NoMetricsEndpoint()
    from adapters.metrics.prometheus import MetricsEndpoint, PrometheusMetrics

    if not isinstance(metrics, PrometheusMetrics):
        return NoMetricsEndpoint()
    return MetricsEndpoint(metrics, enabled=True, address=config.metrics.address, port=config.metrics.port)


def _sandbox_settings(config: Config) -> SandboxSettings:
    return SandboxSettings(
        runtimes=tuple(sorted(config.runtime.runtimes)),
        default_runtime=config.runtime.default_runtime,
        cgroup_driver=config.runtime.cgroup_driver,
        default_cgroup_parent=config.pods.default_cgroup_parent,
        node_hostname=socket.gethostname(),
        shm_size_bytes=config.pods.shm_size,
        network_teardown_deadline=config.pods.network_teardown_timeout,
    )


def _run_dir(config: Config) -> Path:
    return Path(config.runtime.run_dir)


def _registries_conf_loader(config: Config) -> Callable[[], RegistriesConf]:
    """Reads registries.conf and its drop-ins on every pull, so edits apply without a restart."""
    main, drop_ins = Path(config.image.registries_conf), Path(config.image.registries_conf_dir)
    return lambda: load_registries_conf(main, drop_ins)


def _trust_settings(config: Config) -> TrustSettings:
    return TrustSettings(
        signature_policy=config.image.signature_policy,
        signature_policy_dir=config.image.signature_policy_dir,
        registries_d=config.image.registries_d,
    )


def _registry_read_timeout(config: Config) -> float:
    progress = config.image.pull_progress_timeout
    return max(2 * progress, 30.0) if progress > 0 else 300.0


def _http_registry(config: Config) -> Registry:
    """Imported and built at the first pull (DeferredRegistry): httpx is not needed before."""
    from adapters.registry.http_registry import HttpRegistry
    from adapters.registry.transport import RegistryLimits

    return HttpRegistry(
        registries_conf=_registries_conf_loader(config),
        # A safety net behind the image service's no-progress watchdog, which must fire first so a stalled
        # pull ends as DEADLINE_EXCEEDED (pull_progress_timeout = 0 disables the watchdog, not the net).
        timeout=_registry_read_timeout(config),
        user_agent=f"pycrio/{package_version()}",
        limits=RegistryLimits(
            max_manifest_bytes=config.image.max_manifest_bytes,
            max_config_bytes=config.image.max_config_bytes,
            max_token_bytes=config.image.max_token_bytes,
            max_error_body_bytes=config.image.max_error_body_bytes,
            request_deadline=config.image.registry_request_deadline,
        ),
    )


def _image_service(
    config: Config,
    registry: Registry,
    layers: LayerStore,
    images: ImageStore,
    users: ImageUsers,
    trust: ImageTrust,
    registries_conf: Callable[[], RegistriesConf],
) -> ImageService:
    service = ImageService(
        registry,
        layers,
        images,
        users,
        trust,
        pinned_images=config.image.pinned_images,
        pull_progress_timeout=config.image.pull_progress_timeout,
        max_image_bytes=config.image.max_image_bytes,
        platform=host_platform(),
        search_registries=lambda: list(registries_conf().search_registries()),
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
        timeout=providers.Callable(lambda c: c.runtime.subprocess_timeout, config),
    )
    namespaces = providers.Singleton(
        PinnedNamespaces,
        run_dir=providers.Callable(_run_dir, config),
        timeout=providers.Callable(lambda c: c.runtime.subprocess_timeout, config),
    )
    infra = providers.Singleton(
        CatatonitInfra,
        run_dir=providers.Callable(_run_dir, config),
        init_path=providers.Callable(lambda c: c.runtime.infra_init, config),
        timeout=providers.Callable(lambda c: c.runtime.subprocess_timeout, config),
    )
    pod_files = providers.Singleton(PodFilesOnDisk, run_dir=providers.Callable(_run_dir, config))
    cgroups = providers.Singleton(CgroupFs)
    hugepages = providers.Singleton(SysfsHugePages)
    # Bound to the containers service when that is built (they need each other).
    pod_containers = providers.Singleton(ServicePodContainers)
    sandboxes = providers.Singleton(
        SandboxService,
        store=state_store,
        network=network,
        namespaces=namespaces,
        infra=infra,
        files=pod_files,
        cgroups=cgroups,
        containers=pod_containers,
        settings=providers.Callable(_sandbox_settings, config),
        hugepages=hugepages,
    )
    sandbox_handlers = providers.Singleton(SandboxHandlers, service=sandboxes)

    registry = providers.Singleton(
        DeferredRegistry, build=providers.Callable(lambda c: functools.partial(_http_registry, c), config)
    )

    runtime_info = providers.Singleton(
        RuntimeInfoService,
        runtime_version=providers.Callable(package_version),
        cgroup_driver=providers.Callable(lambda c: c.runtime.cgroup_driver, config),
        network=network,
        state=state_store,
        handlers=providers.Callable(_handler_features, config),
        supplemental_groups_policy=True,  # domain/users.py applies Merge and Strict
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
        limits=providers.Callable(
            lambda c: UnpackLimits(c.image.max_layer_bytes, c.image.max_layer_ratio, c.image.min_free_bytes),
            config,
        ),
    )
    image_store = providers.Singleton(StateImageStore, state=state_store)
    # A container holds a root file system from create to remove: exactly while its image is in use.
    image_users = providers.Singleton(RootfsImageUsers, layers=layer_store)
    registries_conf = providers.Callable(_registries_conf_loader, config)
    # Prometheus metrics (docs/monitoring.md); the registry decorator counts pulled bytes.
    runtime_metrics = providers.Singleton(_runtime_metrics, config)
    metered_registry = providers.Singleton(MeteredRegistry, registry=registry, metrics=runtime_metrics)
    # Signature policy on every pull (docs/images.md, "Trust").
    signature_verifier = providers.Singleton(
        OfflineSignatureVerifier,
        gpg=providers.Singleton(
            GpgVerifier, timeout=providers.Callable(lambda c: c.runtime.subprocess_timeout, config)
        ),
        sigstore=providers.Singleton(SigstoreVerifier),
    )
    image_trust = providers.Singleton(
        ImageTrust,
        settings=providers.Callable(_trust_settings, config),
        files=providers.Singleton(LocalTrustFiles),
        lookaside=providers.Singleton(LookasideStore),
        registry=metered_registry,
        verifier=signature_verifier,
        observer=runtime_metrics,
    )
    images = providers.Singleton(
        _image_service,
        config=config,
        registry=metered_registry,
        layers=layer_store,
        images=image_store,
        users=image_users,
        trust=image_trust,
        registries_conf=registries_conf,
    )
    image_handlers = providers.Singleton(ImageHandlers, service=images)

    container_service = providers.Singleton(
        build_container_service,
        config=config,
        store=state_store,
        sandboxes=sandboxes,
        images=images,
        pod_containers=pod_containers,
        hugepages=hugepages,
    )
    container_handlers = providers.Singleton(ContainerHandlers, service=container_service)

    # Streaming (Exec/Attach/PortForward) into the containers and pods of the services above.
    stream_targets = providers.Singleton(
        ServiceStreamTargets, containers=container_service, sandboxes=sandboxes
    )
    container_io = stream_targets
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
        max_connections=providers.Callable(lambda c: c.streaming.max_connections, config),
    )
    streaming_service = providers.Singleton(
        StreamingService,
        cache=streaming_cache,
        targets=stream_targets,
        base_url=providers.Callable(lambda server: lambda: server.base_url, streaming_server),
    )
    streaming_handlers = providers.Singleton(StreamingHandlers, service=streaming_service)

    # Monitoring: stats, pod metrics, container events, Prometheus (docs/monitoring.md).
    clock = providers.Singleton(SystemClock)
    metrics_endpoint = providers.Singleton(_metrics_endpoint, config, runtime_metrics)
    # What stats and events know of pods and containers: thin adapters over their services.
    workloads = providers.Singleton(ServiceWorkloads, sandboxes=sandboxes, containers=container_service)
    pod_statuses = providers.Singleton(
        HandlerStatuses, sandboxes=sandbox_handlers, containers=container_service
    )
    stats_service = providers.Singleton(
        StatsService,
        inventory=workloads,
        cgroups=providers.Singleton(
            host_cgroup_reader, providers.Callable(lambda c: c.runtime.cgroup_driver, config)
        ),
        network=providers.Singleton(NetnsStatsReader),
        disk=providers.Singleton(WalkingDiskUsage),
        processes=providers.Singleton(ProcfsProcessStats),
        clock=clock,
        period=providers.Callable(lambda c: c.stats.period, config),
        disk_usage_period=providers.Callable(lambda c: c.stats.disk_usage_period, config),
        on_error=providers.Object(_log_stats_error),
    )
    stats_collector = providers.Singleton(
        StatsCollector, service=stats_service, period=providers.Callable(lambda c: c.stats.period, config)
    )
    event_broadcaster: providers.Singleton[Broadcaster[Any]] = providers.Singleton(
        Broadcaster,
        capacity=providers.Callable(lambda c: c.stats.events_queue_size, config),
        on_drop=runtime_metrics.provided.container_events_dropped,
    )
    # The ContainerEventSink the pods and containers services report lifecycle changes to.
    container_events = providers.Singleton(
        CriEventPublisher, broadcaster=event_broadcaster, statuses=pod_statuses, clock=clock
    )
    stats_handlers = providers.Singleton(StatsHandlers, service=stats_service)
    pod_metrics_handlers = providers.Singleton(PodMetricsHandlers, service=stats_service, clock=clock)
    event_handlers = providers.Singleton(ContainerEventHandlers, broadcaster=event_broadcaster)
    sandbox_event_handlers = providers.Singleton(
        SandboxEventHandlers, handlers=sandbox_handlers, publisher=container_events, statuses=pod_statuses
    )
    container_event_ledger = providers.Singleton(LifecycleLedger, publisher=container_events)
    container_event_handlers = providers.Singleton(
        ContainerLifecycleEvents,
        handlers=container_handlers,
        service=container_service,
        ledger=container_event_ledger,
    )
    container_exits = providers.Singleton(
        ContainerExits, service=container_service, ledger=container_event_ledger, metrics=runtime_metrics
    )
    # conmon writes <run_dir>/exits/<id> (adapters/containers/wiring.py) when a container's process ends.
    exit_watcher = providers.Singleton(
        ExitFileWatcher,
        directory=providers.Callable(lambda c: Path(c.runtime.run_dir) / "exits", config),
        on_exit=container_exits.provided.on_exit,
    )
    # Started after the CRI server, stopped before it (main.serve).
    background_services = providers.List(
        stats_collector,
        metrics_endpoint,
        exit_watcher,
        providers.Singleton(EventStreams, broadcaster=event_broadcaster),
    )

    runtime_servicer = providers.Singleton(
        runtime_service,
        groups=providers.List(
            runtime_info_handlers,
            sandbox_event_handlers,
            container_event_handlers,
            stats_handlers,
            pod_metrics_handlers,
            event_handlers,
            streaming_handlers,
        ),
    )
    # PullImage successes and failures are counted around the image handlers.
    pull_metrics_handlers = providers.Singleton(
        PullMetricsHandlers, handlers=image_handlers, metrics=runtime_metrics
    )
    image_servicer = providers.Singleton(image_service, groups=providers.List(pull_metrics_handlers))

    server = providers.Singleton(
        CriServer,
        socket_path=providers.Callable(lambda c: c.socket_path, config),
        socket_mode=providers.Callable(lambda c: int(c.grpc.socket_mode, 8), config),
        runtime_servicer=runtime_servicer,
        image_servicer=image_servicer,
        max_workers=providers.Callable(lambda c: c.grpc.max_workers, config),
        max_streams=providers.Callable(lambda c: c.grpc.max_streams, config),
        observers=providers.List(runtime_metrics),
    )


def make_container(config: Config) -> Container:
    return Container(config=config)
