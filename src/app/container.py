"""The dependency-injector container: the one place that chooses adapters.

`make_container(config)` wires the real adapters; tests build the same container and override providers
with the fakes from tests/fakes.
"""

import functools
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from adapters.cgroups.cgroupfs import CgroupFs
from adapters.cgroups.detect import host_cgroup_reader
from adapters.cgroups.hugepages import SysfsHugePages
from adapters.cni.network import CniNetwork
from adapters.conmon.monitor import ConmonMonitor
from adapters.containers.image_rootfs import ImageServiceRootfs
from adapters.cri.containers import ContainerHandlers
from adapters.cri.events import ContainerEventHandlers, CriEventPublisher, EventStreams
from adapters.cri.handler_statuses import HandlerStatuses
from adapters.cri.images import ImageHandlers
from adapters.cri.pod_metrics import PodMetricsHandlers
from adapters.cri.runtime_info import RuntimeInfoHandlers
from adapters.cri.sandboxes import SandboxHandlers
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.cri.stats import StatsHandlers
from adapters.cri.streaming import StreamingHandlers
from adapters.diskusage.walk import WalkingDiskUsage
from adapters.exits.watcher import ExitFileWatcher
from adapters.extensions.cdi_spec_dirs import DirectoryCdiSpecs
from adapters.extensions.hook_dirs import DirectoryOciHooks
from adapters.host.bundles import DirectoryBundles
from adapters.host.facts import read_host_facts
from adapters.host.files import RealHostFiles
from adapters.metrics.disabled import DiscardedMetrics, NoMetricsEndpoint
from adapters.namespaces.catatonit import CatatonitInfra
from adapters.namespaces.ns_helper import helper_path
from adapters.namespaces.pinned import PinnedNamespaces
from adapters.netns.stats import NetnsStatsReader
from adapters.podfiles.on_disk import PodFilesOnDisk
from adapters.process.liveness import ProcessLiveness
from adapters.process.pidfd_watcher import PidfdExitWatcher
from adapters.procfs.process_stats import ProcfsProcessStats
from adapters.registry.auth_files import AuthFileCredentials
from adapters.registry.conf_files import load_registries_conf
from adapters.registry.deferred import DeferredRegistry
from adapters.registry.host_platform import host_platform
from adapters.runc.features import runtime_features
from adapters.runc.runtime import RuncRuntime
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_store import StateImageStore
from adapters.storage.image_users import RootfsImageUsers
from adapters.storage.limits import UnpackLimits
from adapters.storage.overlay_layer_store import OverlayLayerStore
from adapters.streaming.netns_port_forwarder import NetnsPortForwarder
from adapters.streaming.server import StreamingServer
from adapters.system.clock import SystemClock
from adapters.systemd.notify import SdNotify
from app.config import Config, to_toml_dict
from app.di import containers, providers
from app.links.deferred_trust import DeferredPullGate
from app.links.exits import ContainerExits
from app.links.infra_exits import InfraExits
from app.links.monitor_exits import MonitorExits
from app.links.nri import NriLink
from app.links.pod_containers import ServicePodContainers
from app.links.sandbox_lookup import SandboxServiceLookup
from app.links.stream_targets import ServiceStreamTargets
from app.links.workloads import ServiceWorkloads
from app.version import VERSION
from domain.containers import ContainerService, RuntimeHandler
from domain.events import Broadcaster, LifecycleLedger
from domain.images import ImageService, PullGate
from domain.nri_relay import NriRelay
from domain.oci_spec import HostFacts
from domain.registries_conf import RegistriesConf
from domain.runtime_info import HandlerFeatures, RuntimeInfoService
from domain.sandboxes import SandboxService, SandboxSettings
from domain.stats import StatsService
from domain.streaming import RequestCache, StreamingService
from ports.cgroups import Cgroups
from ports.checkpoints import CheckpointArchives
from ports.image_store import ImageStore
from ports.image_users import ImageUsers
from ports.layer_store import LayerStore
from ports.metrics import PullMetrics, RuntimeMetrics
from ports.oci_runtime import OciRuntime
from ports.registry import Registry

if TYPE_CHECKING:
    from adapters.trust.sigstore import SigstoreVerifier
    from domain.trust import ImageTrust


def package_version() -> str:
    return VERSION


def _log_stats_error(what: str, error: Exception) -> None:
    structlog.get_logger("pycrio.stats").warning("stats read failed", what=what, error=str(error))


def _handler_features(config: Config) -> list[HandlerFeatures]:
    """Each configured handler's features from its runtime's `features` output, then the default ("")."""
    runtimes = config.runtime.runtimes
    found = {name: runtime_features(handler.path) for name, handler in runtimes.items()}

    def features(name: str, shown_as: str) -> HandlerFeatures:
        each = found[name]
        return HandlerFeatures(
            shown_as,
            recursive_read_only_mounts=each.recursive_read_only,
            user_namespaces=each.idmapped_mounts,
            user_namespaces_refusal=each.idmap_reason,
        )

    return [features(name, name) for name in sorted(runtimes)] + [
        features(config.runtime.default_runtime, "")
    ]


def _runtime_metrics(config: Config) -> RuntimeMetrics:
    """Prometheus only when metrics are served: imported here so a daemon without them never loads it."""
    if not config.metrics.enabled:
        return DiscardedMetrics()
    from adapters.metrics.prometheus import PrometheusMetrics

    return PrometheusMetrics()


def _metrics_endpoint(config: Config, metrics: RuntimeMetrics, images: ImageService) -> object:
    """The /metrics endpoint, when enabled, over the Prometheus registry (only that one can be served)."""
    if not config.metrics.enabled:
        return NoMetricsEndpoint()
    from adapters.metrics.prometheus import MetricsEndpoint, PrometheusMetrics

    if not isinstance(metrics, PrometheusMetrics):
        return NoMetricsEndpoint()
    metrics.watch_pulls(images.pulls_in_progress)
    return MetricsEndpoint(metrics, enabled=True, address=config.metrics.address, port=config.metrics.port)


def _sandbox_settings(config: Config, handlers: list[HandlerFeatures], host: HostFacts) -> SandboxSettings:
    return SandboxSettings(
        boot_id=host.boot_id,
        userns_refusals={
            h.name: h.user_namespaces_refusal for h in handlers if h.name and not h.user_namespaces
        },
        runtimes=tuple(sorted(config.runtime.runtimes)),
        default_runtime=config.runtime.default_runtime,
        cgroup_driver=config.runtime.cgroup_driver,
        default_cgroup_parent=config.pods.default_cgroup_parent,
        node_hostname=socket.gethostname(),
        shm_size_bytes=config.pods.shm_size,
        network_teardown_deadline=config.pods.network_teardown_timeout,
    )


def _cgroups(config: Config) -> Cgroups:
    """cgroupfs directories, or slices and scopes made through systemd's D-Bus API (connected when first
    used)."""
    if config.runtime.cgroup_driver == "systemd":
        from adapters.cgroups.systemd import SystemdCgroups
        from adapters.systemd.dbus_units import DbusSystemdUnits

        return SystemdCgroups(DbusSystemdUnits(job_timeout=config.runtime.subprocess_timeout))
    return CgroupFs()


def _run_dir(config: Config) -> Path:
    return Path(config.runtime.run_dir)


def _registries_conf_loader(config: Config) -> Callable[[], RegistriesConf]:
    """Reads registries.conf and its drop-ins on every pull, so edits apply without a restart."""
    main, drop_ins = Path(config.image.registries_conf), Path(config.image.registries_conf_dir)
    return lambda: load_registries_conf(main, drop_ins)


def _sigstore_verifier() -> "SigstoreVerifier":
    # Imported at the first sigstore signature, not at start-up (adapters/trust/verifier.py says why).
    from adapters.trust.sigstore import SigstoreVerifier

    return SigstoreVerifier()


def _image_trust(config: Config, registry: Registry, observer: RuntimeMetrics) -> "ImageTrust":
    """Imported and built at the first pull (DeferredPullGate): the trust code is not needed before."""
    from adapters.trust.files import LocalTrustFiles
    from adapters.trust.gpg import GpgVerifier
    from adapters.trust.lookaside import LookasideStore
    from adapters.trust.verifier import OfflineSignatureVerifier
    from domain.trust import ImageTrust, TrustSettings

    settings = TrustSettings(
        signature_policy=config.image.signature_policy,
        signature_policy_dir=config.image.signature_policy_dir,
        registries_d=config.image.registries_d,
    )
    verifier = OfflineSignatureVerifier(
        gpg=GpgVerifier(timeout=config.runtime.subprocess_timeout),
        sigstore=functools.cache(_sigstore_verifier),  # one, made at the first sigstore signature
    )
    return ImageTrust(
        settings=settings,
        files=LocalTrustFiles(),
        lookaside=LookasideStore(),
        registry=registry,
        verifier=verifier,
        observer=observer,
    )


def _registry_read_timeout(config: Config) -> float:
    progress = config.image.pull_progress_timeout
    return max(2 * progress, 30.0) if progress > 0 else 300.0


def _http_registry(config: Config) -> Registry:
    """Imported and built at the first pull (DeferredRegistry): httpx is not needed before."""
    from adapters.registry.http_registry import HttpRegistry
    from adapters.registry.transport import RegistryLimits

    return HttpRegistry(
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
    trust: PullGate,
    registries_conf: Callable[[], RegistriesConf],
    metrics: PullMetrics,
) -> ImageService:
    service = ImageService(
        registry,
        layers,
        images,
        users,
        trust,
        pinned_images=config.image.pinned_images,
        pull_progress_timeout=config.image.pull_progress_timeout,
        pull_progress_interval=config.image.pull_progress_interval,
        pull_deadline=config.image.pull_deadline,
        max_concurrent_layers=config.image.max_concurrent_layers,
        max_image_bytes=config.image.max_image_bytes,
        platform=host_platform(),
        registries_conf=registries_conf,
        metrics=metrics,
        credentials=AuthFileCredentials(config.image.global_auth_file, config.image.namespaced_auth_dir),
    )
    service.recover()
    return service


def _runtime_handlers(config: Config, oci_runtime: Callable[..., OciRuntime]) -> dict[str, RuntimeHandler]:
    """One OCI runtime per configured handler, each made by the `oci_runtime` provider."""
    systemd = config.runtime.cgroup_driver == "systemd"
    return {
        name: RuntimeHandler(
            oci_runtime(
                handler.path,
                handler.root or str(_run_dir(config) / name),
                timeout=config.runtime.subprocess_timeout,
                systemd_cgroup=systemd,
            ),
            systemd_cgroup=systemd,
        )
        for name, handler in config.runtime.runtimes.items()
    }


_Loadable = TypeVar("_Loadable", DirectoryCdiSpecs, DirectoryOciHooks)


def _loaded(directory: _Loadable) -> _Loadable:
    directory.load()
    return directory


def _restored(service: ContainerService) -> ContainerService:
    """The containers service once it has taken back the containers persisted before a restart, and has
    asked its runtimes whether they can checkpoint here (logged once, with the reason when they cannot)."""
    service.restore()
    log = structlog.get_logger("pycrio.containers")
    for handler, refusal in service.check_checkpoint_support().items():
        if refusal:
            log.info("checkpoint/restore unavailable", runtime_handler=handler, reason=refusal)
        else:
            log.info("checkpoint/restore available", runtime_handler=handler)
    return service


def _nri_relay(config: Config) -> NriRelay | None:
    if not config.nri.enable:
        return None
    from adapters.nri.socket_plugins import SocketNriPlugins  # the NRI messages load only when NRI is on

    return NriRelay(
        SocketNriPlugins(
            socket_path=config.nri.socket_path,
            registration_timeout=config.nri.plugin_registration_timeout,
            request_timeout=config.nri.plugin_request_timeout,
            runtime_version=package_version(),
            config_dir=config.nri.plugin_config_dir,
            plugin_dir=config.nri.plugin_dir,
        )
    )


def _checkpoint_archives(config: Config) -> CheckpointArchives | None:
    """The archives of checkpoint/restore, or None when the config switches it off."""
    if not config.runtime.enable_criu_support:
        return None
    from adapters.checkpoint.tar_archives import TarCheckpointArchives  # tarfile loads at the first use

    return TarCheckpointArchives(Path(config.runtime.root) / "checkpoints")


class Container(containers.DeclarativeContainer):
    __self__ = providers.Self()
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
        helper=providers.Callable(lambda c: helper_path(c.runtime.ns_helper), config),
    )
    # The infra processes' pidfds: asked by lists, and slept on by the infra-exit watcher below.
    infra_liveness = providers.Singleton(ProcessLiveness)
    infra = providers.Singleton(
        CatatonitInfra,
        run_dir=providers.Callable(_run_dir, config),
        init_path=providers.Callable(lambda c: c.runtime.infra_init, config),
        timeout=providers.Callable(lambda c: c.runtime.subprocess_timeout, config),
        helper=providers.Callable(lambda c: helper_path(c.runtime.ns_helper), config),
        liveness=infra_liveness,
    )
    # Which log dirs a pod made is kept on disk, so a pod of an earlier boot still removes them.
    pod_files = providers.Singleton(
        PodFilesOnDisk,
        run_dir=providers.Callable(_run_dir, config),
        records_dir=providers.Callable(lambda c: Path(c.runtime.root) / "pods", config),
    )

    # Lifecycle events (GetContainerEvents): the pods and containers services report every change to one
    # ledger; the publisher describes each with the CRI statuses of its pod, read from those services.
    clock = providers.Singleton(SystemClock)
    # Prometheus metrics (docs/monitoring.md).
    runtime_metrics = providers.Singleton(_runtime_metrics, config)
    event_broadcaster: providers.Singleton[Broadcaster[Any]] = providers.Singleton(
        Broadcaster,
        capacity=providers.Callable(lambda c: c.stats.events_queue_size, config),
        on_drop=runtime_metrics.provided.container_events_dropped,
    )
    pod_statuses = providers.Singleton(
        HandlerStatuses,
        sandboxes=providers.Callable(lambda c: c.sandboxes, __self__),
        containers=providers.Callable(lambda c: c.container_service, __self__),
    )
    container_events = providers.Singleton(
        CriEventPublisher, broadcaster=event_broadcaster, statuses=pod_statuses, clock=clock
    )
    lifecycle_events = providers.Singleton(LifecycleLedger, sink=container_events)
    cgroups = providers.Singleton(_cgroups, config)
    # systemd's Type=notify protocol (READY=1, STOPPING=1, WATCHDOG=1); silent when not started by systemd.
    service_manager = providers.Singleton(SdNotify)
    hugepages = providers.Singleton(SysfsHugePages)
    # The pods and containers services need each other: the containers service is looked up at first use.
    pod_containers = providers.Singleton(
        ServicePodContainers, containers=providers.Callable(lambda c: c.container_service, __self__)
    )
    # `<runtime> features` of every handler, read once: what Status reports and what pods may ask for.
    handler_features = providers.Singleton(_handler_features, config)
    # NRI plugins (docs/nri.md): None when off, and then the NRI adapter is never imported.
    nri_relay = providers.Singleton(_nri_relay, config)
    # What the node is (capabilities, cgroups, boot id), read once.
    host_facts = providers.Singleton(
        read_host_facts, providers.Callable(lambda c: c.runtime.cgroup_driver, config)
    )
    sandboxes = providers.Singleton(
        SandboxService,
        store=state_store,
        network=network,
        namespaces=namespaces,
        infra=infra,
        files=pod_files,
        cgroups=cgroups,
        containers=pod_containers,
        settings=providers.Callable(_sandbox_settings, config, handler_features, host_facts),
        events=lifecycle_events,
        hugepages=hugepages,
        nri=nri_relay,
    )
    sandbox_handlers = providers.Singleton(
        SandboxHandlers, service=sandboxes, statuses=pod_statuses, clock=clock
    )

    registry = providers.Singleton(
        DeferredRegistry, build=providers.Callable(lambda c: functools.partial(_http_registry, c), config)
    )

    runtime_info = providers.Singleton(
        RuntimeInfoService,
        runtime_version=providers.Callable(package_version),
        cgroup_driver=providers.Callable(lambda c: c.runtime.cgroup_driver, config),
        network=network,
        state=state_store,
        handlers=handler_features,
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
            lambda c: UnpackLimits(
                c.image.max_layer_bytes,
                c.image.max_layer_ratio,
                c.image.min_free_bytes,
                c.image.min_free_inodes,
                c.image.max_layer_entries,
            ),
            config,
        ),
    )
    image_store = providers.Singleton(StateImageStore, state=state_store)
    # A container holds a root file system from create to remove: exactly while its image is in use.
    image_users = providers.Singleton(RootfsImageUsers, layers=layer_store)
    registries_conf = providers.Callable(_registries_conf_loader, config)
    # Signature policy on every pull (docs/images.md, "Trust"); its code is loaded at the first pull.
    image_trust = providers.Singleton(
        DeferredPullGate,
        build=providers.Singleton(
            _image_trust, config=config, registry=registry, observer=runtime_metrics
        ).provider,
    )
    images = providers.Singleton(
        _image_service,
        config=config,
        registry=registry,
        layers=layer_store,
        images=image_store,
        users=image_users,
        trust=image_trust,
        registries_conf=registries_conf,
        metrics=runtime_metrics,
    )
    image_handlers = providers.Singleton(ImageHandlers, service=images)

    # Containers: one OCI runtime per runtime handler (`oci_runtime` makes each), conmon, host files.
    oci_runtime = providers.Factory(
        RuncRuntime, scratch_dir=providers.Callable(lambda c: _run_dir(c) / "exec", config)
    )
    runtime_handlers = providers.Singleton(_runtime_handlers, config, oci_runtime.provider)
    # The conmon processes' pidfds (then, for a container whose conmon died, its own process'): slept on by
    # the pidfd exit watcher below.
    monitor_liveness = providers.Singleton(ProcessLiveness)
    container_monitor = providers.Singleton(
        ConmonMonitor,
        conmon=providers.Callable(lambda c: c.runtime.conmon, config),
        persist_root=providers.Callable(lambda c: _run_dir(c) / "conmon", config),
        exits_dir=providers.Callable(lambda c: _run_dir(c) / "exits", config),
        sockets_dir=providers.Callable(lambda c: _run_dir(c) / "attach", config),
        liveness=monitor_liveness,
    )
    host_files = providers.Singleton(RealHostFiles)
    bundles = providers.Singleton(
        DirectoryBundles, root=providers.Callable(lambda c: _run_dir(c) / "containers", config)
    )
    # CDI specs and OCI hooks are read once now: broken files are logged at start-up, not at the first create.
    cdi_specs = providers.Singleton(
        _loaded,
        providers.Factory(DirectoryCdiSpecs, providers.Callable(lambda c: c.runtime.cdi_spec_dirs, config)),
    )
    oci_hooks = providers.Singleton(
        _loaded,
        providers.Factory(DirectoryOciHooks, providers.Callable(lambda c: c.runtime.hooks_dir, config)),
    )
    sandbox_lookup = providers.Singleton(SandboxServiceLookup, sandboxes=sandboxes)
    container_rootfs = providers.Singleton(ImageServiceRootfs, images=images)
    container_service = providers.Singleton(
        _restored,
        providers.Factory(
            ContainerService,
            store=state_store,
            sandboxes=sandbox_lookup,
            rootfs=container_rootfs,
            host_files=host_files,
            bundles=bundles,
            monitor=container_monitor,
            runtimes=runtime_handlers,
            default_runtime=providers.Callable(lambda c: c.runtime.default_runtime, config),
            host=host_facts,
            hugepages=hugepages,
            create_timeout=providers.Callable(lambda c: c.runtime.subprocess_timeout, config),
            cdi_specs=cdi_specs,
            oci_hooks=oci_hooks,
            log_size_max=providers.Callable(lambda c: c.runtime.log_size_max, config),
            events=lifecycle_events,
            monitor_cgroups=cgroups,
            conmon_cgroup=providers.Callable(lambda c: c.runtime.conmon_cgroup, config),
            nri=nri_relay,
            checkpoints=providers.Singleton(_checkpoint_archives, config),
        ),
    )
    container_handlers = providers.Singleton(ContainerHandlers, service=container_service)

    # Streaming (Exec/Attach/PortForward) into the containers and pods of the services above.
    stream_targets = providers.Singleton(
        ServiceStreamTargets, containers=container_service, sandboxes=sandboxes
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
        container_streams=container_service,
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
    metrics_endpoint = providers.Singleton(_metrics_endpoint, config, runtime_metrics, images)
    # What stats and events know of pods and containers: thin adapters over their services.
    workloads = providers.Singleton(
        ServiceWorkloads, sandboxes=sandboxes, containers=container_service, layers=layer_store
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
    stats_handlers = providers.Singleton(StatsHandlers, service=stats_service)
    pod_metrics_handlers = providers.Singleton(PodMetricsHandlers, service=stats_service, clock=clock)
    event_handlers = providers.Singleton(ContainerEventHandlers, broadcaster=event_broadcaster)
    container_exits = providers.Singleton(ContainerExits, service=container_service, metrics=runtime_metrics)
    # conmon writes <run_dir>/exits/<id> (container_monitor above) when a container's process ends.
    exit_watcher = providers.Singleton(
        ExitFileWatcher,
        directory=providers.Callable(lambda c: Path(c.runtime.run_dir) / "exits", config),
        on_exit=container_exits.provided.on_exit,
    )
    infra_exits = providers.Singleton(InfraExits, sandboxes=sandboxes)
    monitor_exits = providers.Singleton(MonitorExits, service=container_service, metrics=runtime_metrics)
    # One thread sleeps on both pidfd sets: infra processes (pods) and conmons (containers).
    pidfd_exit_watcher = providers.Singleton(
        PidfdExitWatcher,
        watches=providers.List(
            providers.Callable(tuple, providers.List(infra_liveness, infra_exits.provided.on_exit)),
            providers.Callable(tuple, providers.List(monitor_liveness, monitor_exits.provided.on_exit)),
        ),
    )
    # Started after the CRI server, stopped before it (main.serve).
    background_services = providers.List(
        metrics_endpoint,
        exit_watcher,
        pidfd_exit_watcher,
        monitor_exits,  # its start looks once: the restored containers' conmons are watched again
        providers.Singleton(EventStreams, broadcaster=event_broadcaster),
        providers.Singleton(NriLink, relay=nri_relay, sandboxes=sandboxes, containers=container_service),
    )

    runtime_servicer = providers.Singleton(
        runtime_service,
        groups=providers.List(
            runtime_info_handlers,
            sandbox_handlers,
            container_handlers,
            stats_handlers,
            pod_metrics_handlers,
            event_handlers,
            streaming_handlers,
        ),
    )
    image_servicer = providers.Singleton(image_service, groups=providers.List(image_handlers))

    server = providers.Singleton(
        CriServer,
        socket_path=providers.Callable(lambda c: c.socket_path, config),
        socket_mode=providers.Callable(lambda c: int(c.grpc.socket_mode, 8), config),
        runtime_servicer=runtime_servicer,
        image_servicer=image_servicer,
        max_workers=providers.Callable(lambda c: c.grpc.max_workers, config),
        max_poll_workers=providers.Callable(lambda c: c.grpc.max_poll_workers, config),
        max_streams=providers.Callable(lambda c: c.grpc.max_streams, config),
        max_connections=providers.Callable(lambda c: c.grpc.max_connections, config),
        observers=providers.List(runtime_metrics),
    )


def make_container(config: Config) -> Container:
    return Container(config=config)
