"""The container lifecycle: create, start, stop, remove, status, exec, resource updates, checkpoints, restore.

State machine (CRI ContainerState): CREATED -> RUNNING -> EXITED; UNKNOWN when the runtime lost a container
whose exit nobody recorded. The exit of a running container is learnt from the monitor's exit record.

Every container is persisted through the StateStore before its first side effect (state "creating") so that
a daemon that dies half-way through a create cleans up on restart. Names are reserved per sandbox
(domain/reservations.py); a kubelet retry of a create that is under way or finished gets the same container
back instead of "name is reserved".
Work on one container holds that container's lock only; nothing holds a global lock across a subprocess,
and no lock is held across a wait whose length a request chooses: a stop's grace period is waited out
without the lock (RemoveContainer pre-empts it), and stop and remove do not queue behind a create that is
still running (remove marks it abandoned, and the create undoes itself when it returns).

Checkpoint/restore (domain/checkpoints.py has the rules): CheckpointContainer dumps a running container
with the runtime's CRIU support and archives it; CreateContainer naming such an archive as its image makes
a CREATED container holding the archive's file changes and CRIU images, and StartContainer restores its
processes under the monitor instead of starting it afresh.
"""

import dataclasses
import enum
import hashlib
import json
import secrets
import threading
import time
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from domain import cdi, checkpoints
from domain.boots import from_earlier_boot
from domain.cgroup_paths import monitor_cgroup
from domain.container_config import ContainerConfig, ImageConfig, NamespaceMode, Resources, SandboxFacts
from domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    NotSupported,
    PycrioError,
)
from domain.events import ContainerEventType, LifecycleLedger, unreported
from domain.generation import Generation
from domain.names import check_kube_name
from domain.nri import NriContainer, NriContainerState, NriPod, NriUpdate
from domain.nri_relay import NriRelay, lifecycle_change
from domain.nri_spec import apply_adjustment, container_from_spec, cri_resources, nri_resources
from domain.oci_spec import (
    SIGNALS,
    HostDevice,
    HostFacts,
    SpecInputs,
    build_spec,
    check_image_strings,
    check_mount_destinations,
    check_path_length,
    nested_mount_points,
    resources_to_oci,
    settable_hugepage_sizes,
    stop_signal,
)
from domain.reservations import Handover, Reservations
from domain.seccomp import choose_profile
from domain.userns import check_container_user_namespace
from ports.bundles import Bundles
from ports.cdi_specs import CdiSpecs
from ports.cgroups import Cgroups
from ports.checkpoints import CRIU_IMAGES, CheckpointArchives, CheckpointDumps
from ports.container_monitor import ContainerMonitor, Created, MonitoredCreate
from ports.container_rootfs import ContainerImage, ContainerRootfs
from ports.host_files import HostFiles
from ports.hugepages import HugePages
from ports.layer_store import LayerIdmap
from ports.oci_hooks import OciHooks
from ports.oci_runtime import ExecResult, OciRuntime
from ports.sandbox_lookup import SandboxLookup
from ports.state_store import StateStore
from ports.streaming import ProcessStreams

_KIND = "containers"
_log = structlog.get_logger("pycrio.containers")
SIGKILL = 9
# Timeouts from requests are clamped to this many seconds (docs/security.md): StopContainer's grace period
# and ExecSync's timeout. A day is longer than any kubelet deadline; 2**62 would keep a thread forever.
MAX_REQUEST_TIMEOUT = 24 * 3600.0
# How long a stop waits for the monitor to record an exit after SIGKILL before it answers FAILED_PRECONDITION.
KILL_WAIT = 30.0


class ContainerState(enum.Enum):
    CREATED = 0
    RUNNING = 1
    EXITED = 2
    UNKNOWN = 3


# Reasons the kubelet reads from ContainerStatus.reason.
REASON_COMPLETED = "Completed"
REASON_ERROR = "Error"
REASON_OOM_KILLED = "OOMKilled"
REASON_START_ERROR = "StartError"
REASON_UNKNOWN = "Unknown"  # the exit is unknown: the node rebooted under the container (containerd's word)


@dataclass
class Container:
    """One container as the runtime remembers it (persisted as JSON)."""

    id: str
    sandbox_id: str
    name: str  # the reserved name
    config: ContainerConfig
    image_id: str
    image_ref: str
    image_name: str
    runtime_handler: str
    log_path: str
    stop_signal: str
    fingerprint: str  # the request that made it, to recognise a kubelet retry
    state: ContainerState = ContainerState.CREATED
    creating: bool = True  # side effects in progress; cleaned up on restart
    created_at: int = 0  # ns since the epoch
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    pid: int = 0
    bundle: str = ""
    rootfs: str = ""
    monitor_cgroup: str = ""  # conmon's scope (systemd) or cgroup (cgroupfs), removed with the container
    # systemd driver: the pod cgroup's OOM kill count when the container was made (-1: unknown), see
    # _oom_killed_in_pod.
    pod_cgroup: str = ""
    pod_oom_kills: int = -1
    # One entry per config mount: the image id an image volume resolved to ("" for other mounts).
    image_volume_ids: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    # Host paths runc would make for nested mounts and that did not exist: removed when the create fails.
    mount_points_made: list[str] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    # Restored from a checkpoint archive and not started yet: the directory of its CRIU images.
    restore_from: str = ""
    # The kernel's boot id when it was made ("" in records from before it was kept), as for pods.
    boot_id: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    # The runtime's `delete` of the exited container: set while one runs or ran (release_runtime, remove),
    # and whether it succeeded. Not persisted: after a restart RemoveContainer deletes again, which finds
    # nothing to do when the delete had run.
    runtime_release: threading.Event | None = field(default=None, compare=False, repr=False)
    runtime_deleted: bool = field(default=False, compare=False, repr=False)

    def to_document(self) -> dict[str, Any]:
        document = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _UNSAVED}
        document["config"] = _to_plain(self.config)
        document["resources"] = _to_plain(self.resources)
        document["state"] = self.state.name
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> "Container":
        values = dict(document)
        values["config"] = _from_plain(ContainerConfig, values["config"])
        values["resources"] = _from_plain(Resources, values["resources"])
        values["state"] = ContainerState[values["state"]]
        return cls(**values)


_UNSAVED = frozenset({"lock", "runtime_release", "runtime_deleted"})  # Container fields kept in memory only


def _detached(container: Container) -> Container:
    """A copy for callers outside the container's lock: the same fields, a lock of its own. Copying the
    instance dict costs a third of dataclasses.replace, which re-runs __init__ (lists copy every one)."""
    duplicate = object.__new__(Container)
    duplicate.__dict__.update(container.__dict__)
    duplicate.lock = threading.Lock()
    return duplicate


@dataclass(frozen=True)
class ContainerFilter:
    id: str = ""  # an id or a unique-enough prefix
    state: ContainerState | None = None
    sandbox_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeHandler:
    runtime: OciRuntime
    systemd_cgroup: bool = False


def container_name(config: ContainerConfig, sandbox: SandboxFacts) -> str:
    """The kubelet-style unique name: k8s_<container>_<pod>_<namespace>_<pod uid>_<attempt>."""
    return f"k8s_{config.name}_{sandbox.name}_{sandbox.namespace}_{sandbox.uid}_{config.attempt}"


def exit_reason(exit_code: int, oom_killed: bool) -> str:
    if oom_killed:
        return REASON_OOM_KILLED
    return REASON_COMPLETED if exit_code == 0 else REASON_ERROR


class ContainerService:
    def __init__(
        self,
        store: StateStore,
        sandboxes: SandboxLookup,
        rootfs: ContainerRootfs,
        host_files: HostFiles,
        bundles: Bundles,
        monitor: ContainerMonitor,
        runtimes: Mapping[str, RuntimeHandler],
        default_runtime: str,
        host: HostFacts,
        hugepages: HugePages,
        create_timeout: float = 120.0,
        monitor_cgroups: Cgroups | None = None,
        conmon_cgroup: str = "pod",
        now_ns: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        new_id: Callable[[], str] = lambda: secrets.token_hex(32),
        events: LifecycleLedger | None = None,
        cdi_specs: CdiSpecs | None = None,  # None: no CDI spec directories, every CDI device is unknown
        oci_hooks: OciHooks | None = None,  # None: no hook directories
        log_size_max: int = -1,  # bytes of a container's log before the monitor starts it afresh; -1 = none
        nri: NriRelay | None = None,  # None: NRI is off
        checkpoints: CheckpointArchives | None = None,  # None: checkpoint/restore is switched off
    ) -> None:
        self._store = store
        self._sandboxes = sandboxes
        self._rootfs = rootfs
        self._host_files = host_files
        self._bundles = bundles
        self._monitor = monitor
        self._runtimes = dict(runtimes)
        self._default_runtime = default_runtime
        self._host = replace(host, hugepage_sizes=settable_hugepage_sizes(hugepages))
        self._create_timeout = create_timeout
        # Each conmon gets its own cgroup (see domain.cgroup_paths.monitor_cgroup).
        self._monitor_cgroups = monitor_cgroups
        self._conmon_cgroup = conmon_cgroup
        self._now_ns = now_ns
        self._sleep = sleep
        self._monotonic = monotonic
        self._new_id = new_id
        self._events = events or unreported()
        self._cdi_specs = cdi_specs
        self._oci_hooks = oci_hooks
        self._log_size_max = log_size_max
        self._nri = nri
        self._nri_stopped: set[str] = set()  # containers whose StopContainer plugins heard
        self._checkpoints = checkpoints
        self._checkpoint_refusals: dict[str, str] = {}  # by runtime handler: why it cannot checkpoint
        self._containers: dict[str, Container] = {}
        self._names = Reservations("container")
        # Ids of creates still running whose container was removed meanwhile (they undo themselves).
        self._abandoned: set[str] = set()
        # Failed creates whose undo an OS error cut short: undone again before the next create.
        self._undo_later: dict[str, tuple[Container, RuntimeHandler | None]] = {}
        self._index_lock = threading.Lock()  # guards the dicts and the set above only
        self._unmonitored: set[str] = set()  # running on after their monitor died (reported once each)
        self._generation = Generation()  # bumped after every change list_containers would show

    # --- lookup -----------------------------------------------------------------------------------------

    def _get(self, id_or_prefix: str) -> Container:
        if not id_or_prefix:
            raise InvalidArgument("container_id: empty")
        with self._index_lock:
            found = self._containers.get(id_or_prefix)
            if found is None:
                matches = [c for cid, c in self._containers.items() if cid.startswith(id_or_prefix)]
                if len(matches) > 1:
                    raise InvalidArgument(f"container_id: prefix {id_or_prefix!r} matches several containers")
                found = matches[0] if matches else None
        if found is None:
            raise NotFound(f"container {id_or_prefix} not found")
        return found

    @contextmanager
    def _locked(self, id_or_prefix: str) -> Iterator[Container]:
        container = self._get(id_or_prefix)
        with container.lock:
            if self._containers.get(container.id) is not container:
                raise NotFound(f"container {id_or_prefix} not found")
            yield container

    @contextmanager
    def _locked_unless_creating(self, id_or_prefix: str, abandon: bool = False) -> Iterator[Container | None]:
        """The container, locked; None when it is unknown or still being created. A create holds the lock for
        as long as it takes, and stop and remove must not queue behind it; `abandon` makes the create undo
        itself when it returns."""
        try:
            container = self._get(id_or_prefix)
        except NotFound:
            yield None
            return
        if not container.lock.acquire(blocking=False):
            with self._index_lock:
                creating = container.creating and self._containers.get(container.id) is container
                if creating and abandon:
                    self._abandoned.add(container.id)
            if creating:
                yield None
                return
            container.lock.acquire()  # held by a bounded step (start, a SIGKILL, an update)
        try:
            yield container if self._containers.get(container.id) is container else None
        finally:
            container.lock.release()

    @contextmanager
    def _locked_running(self, id_or_prefix: str) -> Iterator[Container]:
        """The container, locked and refreshed; FailedPrecondition unless it is RUNNING."""
        with self._locked(id_or_prefix) as container:
            self._refresh(container)
            if container.state is not ContainerState.RUNNING:
                raise FailedPrecondition(f"container {container.id} is {container.state.name}, not RUNNING")
            yield container

    def _handler(self, name: str) -> RuntimeHandler:
        handler = self._runtimes.get(name or self._default_runtime)
        if handler is None:
            raise InvalidArgument(f"runtime_handler: {name!r} is not configured")
        return handler

    def _persist(self, container: Container) -> None:
        # Every change is persisted: the change is made, so lists rebuild (even if the write fails).
        self._generation.bump()
        self._store.put(_KIND, container.id, container.to_document())

    def _persist_learned(self, container: Container) -> None:
        """Save an exit learned while reading (a list, a status, the exit watcher). A failed write (a full
        disk) must neither fail that read nor lose the STOPPED event: the record is brought up to date by
        the container's next save, or at restart, which learns the exit again from the monitor's record."""
        try:
            self._persist(container)
        except PycrioError as err:
            _log.warning("container exit not recorded on disk", id=container.id, error=str(err))

    # --- create -----------------------------------------------------------------------------------------

    def create(
        self, sandbox_id: str, config: ContainerConfig, caller_gone: Callable[[], bool] = lambda: False
    ) -> str:
        if self._undo_later:
            self._retry_undos()
        with lifecycle_change(self._nri):
            return self._create(sandbox_id, config, caller_gone)

    def _create(self, sandbox_id: str, config: ContainerConfig, caller_gone: Callable[[], bool]) -> str:
        check_kube_name("metadata.name", config.name)
        if not config.image:
            raise InvalidArgument("image.image: empty")
        check_mount_destinations(config.mounts)
        resources_to_oci(config.resources, self._host)  # refuse bad limits before anything is made
        sandbox = self._sandboxes.sandbox_facts(sandbox_id)
        name = container_name(config, sandbox)
        fingerprint = _fingerprint(sandbox_id, config)
        handler = self._handler(sandbox.runtime_handler)
        archive = config.image if checkpoints.is_archive(config.image) else ""
        if archive:
            config, image = self._restored_config(config, sandbox, archive)
        else:
            image = self._rootfs.resolve_image(config.image)
        check_image_strings(image.config)
        log_path = _log_path(sandbox, config)
        container = Container(
            id=self._new_id(),
            sandbox_id=sandbox_id,
            name=name,
            config=config,
            image_id=image.id,
            image_ref=image.ref,
            image_name=image.name,
            runtime_handler=sandbox.runtime_handler or self._default_runtime,
            log_path=log_path,
            stop_signal=stop_signal(config, image.config),
            fingerprint=fingerprint,
            resources=config.resources,
            boot_id=self._host.boot_id,
        )
        finished = self._names.reserve(name, container.id, fingerprint)
        if finished is not None:
            return self._identical(finished, name)
        container.lock.acquire()  # fresh, so this never waits
        with self._index_lock:
            self._containers[container.id] = container

        def check_caller() -> None:
            self._names.check_caller(name, container.id, caller_gone, "CreateContainer")

        try:
            check_caller()
            self._persist(container)
            self._create_on_host(container, sandbox, handler, image.config, check_caller, archive)
            check_caller()
            with self._index_lock:
                abandoned = container.id in self._abandoned
                self._abandoned.discard(container.id)
                container.creating = abandoned
            if abandoned:
                raise FailedPrecondition(f"container {container.id} was removed while it was being created")
            container.created_at = self._now_ns()
            self._persist(container)
            self._names.created(name, container.id, Handover.ALWAYS)
            self._events.publish(container.id, container.sandbox_id, ContainerEventType.CREATED)
            if self._nri is not None:
                self._nri.post_create_container(self._nri_pod(container.sandbox_id), self.nri_view(container))
        except BaseException:
            self._undo_create(container, handler)
            raise
        finally:
            container.lock.release()
        return container.id

    def _identical(self, container_id: str, name: str) -> str:
        """The container an identical earlier request made, while it has not been started yet."""
        with self._index_lock:
            owner = self._containers.get(container_id)
        if owner is None or owner.creating or owner.state is not ContainerState.CREATED:
            raise AlreadyExists(f"container name {name!r} is reserved by container {container_id}")
        return container_id

    def _release(self, container: Container) -> None:
        with self._index_lock:
            self._abandoned.discard(container.id)
            self._containers.pop(container.id, None)
            self._unmonitored.discard(container.id)
        self._generation.bump()
        self._names.release(container.name, container.id)

    def _create_on_host(
        self,
        container: Container,
        sandbox: SandboxFacts,
        handler: RuntimeHandler,
        image_config: ImageConfig,
        check_caller: Callable[[], None],
        archive: str = "",
    ) -> None:
        config = container.config
        cdi_edits, cdi_host_devices = self._cdi_edits(config)
        # Before anything is mounted: a container shares its pod's user namespace or has none.
        check_container_user_namespace(
            config.security.namespace_options.user_namespace, sandbox.user_namespace
        )
        idmap = _layer_idmap(sandbox)
        container.rootfs = self._rootfs.create(container.id, container.image_id, idmap)
        check_caller()
        if archive and self._checkpoints is not None:
            # The files as they were at the checkpoint; the processes come back at StartContainer.
            container.restore_from = str(self._checkpoints.unpack(container.id, archive, container.rootfs))
            check_caller()
        passwd = self._rootfs.read_file(container.id, "/etc/passwd") or ""
        group = self._rootfs.read_file(container.id, "/etc/group") or ""
        mount_sources = {}
        for mount in config.mounts:
            resolved = self._host_files.resolve(mount.host_path) if mount.host_path else None
            if resolved is not None:
                mount_sources[mount.host_path] = resolved
        image_volume_sources = self._mount_image_volumes(container, idmap)
        check_caller()
        devices = {}
        for device in config.devices:
            found = self._host_files.device(device.host_path)
            if found is not None:
                devices[device.host_path] = found
        profile_text = ""
        choice = choose_profile(config.security, self._host.seccomp_default_when_empty)
        if choice.localhost_path:
            try:
                profile_text = self._host_files.read_text(choice.localhost_path) or ""
            except InvalidArgument as err:
                raise InvalidArgument(f"seccomp.localhost_ref: {err}") from None
        spec = build_spec(
            SpecInputs(
                container_id=container.id,
                config=config,
                image=image_config,
                image_name=container.image_name,
                sandbox=sandbox,
                host=self._host,
                rootfs=container.rootfs,
                passwd=passwd,
                group=group,
                mount_sources=mount_sources,
                image_volume_sources=image_volume_sources,
                devices=devices,
                host_devices=self._host_files.all_devices() if config.security.privileged else (),
                seccomp_profile_text=profile_text,
                target_pid_ns_path=self._target_pid_ns(config, container.sandbox_id),
                oci_hooks=self._oci_hooks.load().hooks if self._oci_hooks is not None else (),
                cdi_edits=cdi_edits,
                cdi_host_devices=cdi_host_devices,
            )
        )
        if self._nri is not None:
            nri_container = container_from_spec(
                container.id, container.sandbox_id, config.name, config.labels, spec
            )
            adjustment = self._nri.create_container(self._nri_pod(sandbox.id, sandbox), nri_container)
            if not adjustment.is_empty():
                spec = apply_adjustment(spec, adjustment, self._host.min_oom_score_adj)
        container.spec = spec
        _check_working_dir(
            str(spec["process"]["cwd"]), self._rootfs.resolve_path(container.id, spec["process"]["cwd"])
        )
        # Mount points runc may make inside bind-mounted host directories: removed again if this fails.
        container.mount_points_made = [
            path
            for path in nested_mount_points(spec.get("mounts", []))
            if self._host_files.resolve(path) is None
        ]
        check_caller()
        container.bundle = str(self._bundles.write(container.id, spec))
        check_caller()
        if container.restore_from:
            return
        created = self._monitor.create(
            self._monitored(container, handler),
            timeout=self._create_timeout,
        )
        self._monitor_created(container, sandbox, created)

    def _monitor_created(self, container: Container, sandbox: SandboxFacts, created: Created) -> None:
        """Record the container's process, and put its monitor into its own cgroup under the pod's."""
        container.pid = created.pid
        if self._monitor_cgroups is not None and created.monitor_pid > 0:
            driver = self._host.cgroup_driver
            cgroup = monitor_cgroup(driver, self._conmon_cgroup, sandbox.cgroup_parent, container.id)
            container.monitor_cgroup = cgroup
            self._monitor_cgroups.attach(cgroup, created.monitor_pid)
            if driver == "systemd" and sandbox.cgroup_parent:
                container.pod_cgroup = sandbox.cgroup_parent
                container.pod_oom_kills = self._monitor_cgroups.oom_kills(sandbox.cgroup_parent) or 0

    def _remove_monitor_cgroup(self, container: Container) -> None:
        """Stop conmon's scope (systemd) or remove its cgroup (cgroupfs): conmon is done once the container
        is removed (or never ran)."""
        if self._monitor_cgroups is None or not container.monitor_cgroup:
            return
        if self._host.cgroup_driver == "systemd":
            self._monitor_cgroups.remove(container.monitor_cgroup)  # stopping the scope ends what is left
            return
        # A cgroup directory goes only once empty: conmon leaves right after its container. One it still
        # holds is left (and logged) rather than failing the removal, as cri-o does; the pod's parent
        # then stays too, and is logged when the pod goes.
        self._wait_monitor_gone(container.id, 5.0)
        try:
            self._monitor_cgroups.remove(container.monitor_cgroup)
        except PycrioError as err:
            cgroup = container.monitor_cgroup
            _log.warning("conmon cgroup kept", id=container.id, cgroup=cgroup, error=str(err))

    def _cdi_edits(self, config: ContainerConfig) -> tuple[cdi.ResolvedEdits, dict[str, HostDevice]]:
        """The CDI devices asked for (field and annotations), resolved against the spec files as they are
        now, and the host's device nodes whose numbers the specs leave out."""
        requested = cdi.requested_devices(config.cdi_devices, config.annotations)
        if not requested:
            return cdi.ResolvedEdits(), {}
        specs = self._cdi_specs.load() if self._cdi_specs is not None else cdi.CdiSpecSet()
        resolved = cdi.resolve(specs, requested)
        found = {}
        for source in resolved.device_sources():
            device = self._host_files.device(source)
            if device is not None:
                found[source] = device
        return resolved, found

    def _mount_image_volumes(self, container: Container, idmap: LayerIdmap | None) -> dict[int, str]:
        """Mount each image volume's image (read-only in the spec) and return the host directory to bind,
        by mount index. The volume holds the image's layers like a container would, until removal."""
        sources: dict[int, str] = {}
        container.image_volume_ids = ["" for _ in container.config.mounts]
        for index, mount in enumerate(container.config.mounts):
            if not mount.image:
                continue
            where = f"mounts[{index}]"
            if not mount.readonly:
                raise InvalidArgument(f"{where}.readonly: an image volume must be read-only")
            sub_path = _image_sub_path(f"{where}.image_sub_path", mount.image_sub_path)
            image = self._rootfs.resolve_image(mount.image)
            container.image_volume_ids[index] = image.id
            volume = image_volume_id(container.id, index)
            source = self._rootfs.create(volume, image.id, idmap)
            if sub_path:
                found = self._rootfs.directory(volume, "/" + sub_path)
                if found is None:
                    raise InvalidArgument(
                        f"{where}.image_sub_path: {sub_path!r} is not a directory in {mount.image}"
                    )
                source = found
            sources[index] = source
        return sources

    def _remove_image_volumes(self, container: Container) -> None:
        for index, mount in enumerate(container.config.mounts):
            if mount.image:
                self._rootfs.remove(image_volume_id(container.id, index))

    def _target_pid_ns(self, config: ContainerConfig, sandbox_id: str) -> str:
        """The PID namespace of another container of the same pod: the CRI's TARGET names "a container
        in the pod", and a container of another pod would see (and could signal) that pod's processes."""
        options = config.security.namespace_options
        if options.pid is not NamespaceMode.TARGET or not options.target_id:
            return ""
        where = f"namespace_options.target_id: container {options.target_id}"
        try:
            target = self._get(options.target_id)
        except NotFound:
            raise InvalidArgument(f"{where} not found") from None
        if target.sandbox_id != sandbox_id:
            raise InvalidArgument(f"{where} is not in this container's pod")
        if target.state is not ContainerState.RUNNING or not target.pid:
            raise InvalidArgument(f"{where} is not running")
        return f"/proc/{target.pid}/ns/pid"

    def _monitored(self, container: Container, handler: RuntimeHandler) -> MonitoredCreate:
        config = container.config
        return MonitoredCreate(
            container_id=container.id,
            name=container.name,
            bundle=self._bundles.path(container.id),
            log_path=container.log_path or str(self._bundles.path(container.id) / "container.log"),
            runtime_binary=handler.runtime.binary,
            runtime_root=handler.runtime.root,
            stdin=config.stdin,
            stdin_once=config.stdin_once,
            tty=config.tty,
            systemd_cgroup=handler.systemd_cgroup,
            log_path_from_request=bool(container.log_path),
            log_size_max=self._log_size_max,
        )

    def _remove_mount_points(self, container: Container) -> None:
        for path in reversed(container.mount_points_made):
            self._host_files.remove_if_empty(path)

    def _undo_create(self, container: Container, handler: RuntimeHandler | None) -> None:
        """Best effort: every step tolerates what was never done. The name is released whatever happens;
        what an OS error kept from being undone (no file descriptor left ...) is undone again before the
        next create, so nothing is left once the node has recovered."""
        try:
            unfinished = self._undo_steps(container, handler)
        finally:
            self._release(container)
        if unfinished:
            with self._index_lock:
                self._undo_later[container.id] = (container, handler)

    def _undo_steps(self, container: Container, handler: RuntimeHandler | None) -> bool:
        """Run every undo step; True when one failed with an OS error (the host's trouble, worth a retry)."""
        steps: list[Callable[[], None]] = []
        if handler is not None:
            steps.append(lambda: handler.runtime.delete(container.id, force=True))
        steps += [
            lambda: self._remove_monitor_cgroup(container),
            lambda: self._monitor.cleanup(container.id),
            lambda: self._remove_mount_points(container),
            lambda: self._bundles.remove(container.id),
            lambda: self._rootfs.remove(container.id),
            lambda: self._remove_image_volumes(container),
            lambda: self._remove_checkpoint(container),
            lambda: self._store.delete(_KIND, container.id),
        ]
        unfinished = False
        for number, step in enumerate(steps):
            try:
                step()
            except PycrioError:
                continue
            except Exception as err:
                unfinished = True
                _log.warning("undoing a create: a step failed", id=container.id, step=number, error=str(err))
        return unfinished

    def _retry_undos(self) -> None:
        with self._index_lock:
            pending = list(self._undo_later.items())
        for container_id, (container, handler) in pending:
            if not self._undo_steps(container, handler):
                _log.info("undid what a failed create had left", id=container_id)
                with self._index_lock:
                    self._undo_later.pop(container_id, None)

    # --- start / stop / remove --------------------------------------------------------------------------

    def start(self, container_id: str) -> None:
        with lifecycle_change(self._nri), self._locked(container_id) as container:
            self._refresh(container)
            if container.state is not ContainerState.CREATED:
                raise FailedPrecondition(
                    f"container {container.id} is {container.state.name}, only a CREATED one can be started"
                )
            handler = self._handler(container.runtime_handler)
            # Taken before: the process may run (and exit) before runtime.start returns.
            starting_at = self._now_ns()
            if self._nri is not None:
                self._nri.start_container(self._nri_pod(container.sandbox_id), self.nri_view(container))
            try:
                if container.restore_from:
                    self._restore_processes(container, handler)
                else:
                    handler.runtime.start(container.id)
            except PycrioError as exc:
                container.state = ContainerState.EXITED
                container.finished_at = self._now_ns()
                container.exit_code = 128
                container.reason = REASON_START_ERROR
                container.message = str(exc)
                self._persist(container)
                raise
            container.state = ContainerState.RUNNING
            container.started_at = starting_at
            self._persist(container)
            self._events.publish(container.id, container.sandbox_id, ContainerEventType.STARTED)
            if self._nri is not None:
                self._nri.post_start_container(self._nri_pod(container.sandbox_id), self.nri_view(container))
            self._refresh(container)  # a command that ends at once may already have exited

    def stop(self, container_id: str, timeout: float) -> None:
        """Stop signal, then SIGKILL after `timeout` seconds (at most MAX_REQUEST_TIMEOUT). Stopping a stopped
        or unknown container is fine: the CRI asks for that, and the kubelet retries stops of containers
        that are already gone. A container still being created has nothing to stop yet."""
        timeout = min(timeout, MAX_REQUEST_TIMEOUT)
        with lifecycle_change(self._nri):
            self._stop(container_id, timeout)

    def _stop(self, container_id: str, timeout: float) -> None:
        self._stop_process(container_id, timeout)
        with self._locked_unless_creating(container_id) as container:
            if container is not None and container.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
                self._nri_stop(container)  # plugins hear of it before StopContainer returns

    def _stop_process(self, container_id: str, timeout: float) -> None:
        with self._locked_unless_creating(container_id) as container:
            if container is None:
                return
            self._refresh(container)
            if container.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
                return
            if container.restore_from:
                self._never_restored(container)
                return
            handler = self._handler(container.runtime_handler)
            graceful = container.state is ContainerState.RUNNING and timeout > 0
            if graceful:
                handler.runtime.kill(container.id, _signal_number(container.stop_signal))
        # The grace period is waited out without the lock: a RemoveContainer, or a second stop with a shorter
        # timeout, acts meanwhile.
        if graceful and self._wait_exit(container, timeout, take_lock=True):
            return
        with self._locked_unless_creating(container_id) as current:
            if current is not container:
                return  # removed meanwhile
            self._refresh(container)
            if container.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
                return
            self._kill(handler, container)
            # As long as a call to the runtime may take (runtime.subprocess_timeout), at most KILL_WAIT.
            kill_wait = min(KILL_WAIT, self._create_timeout)
            if not self._wait_exit(container, kill_wait):
                # The process may be gone and its monitor stopped or stuck: say what was not seen.
                raise FailedPrecondition(
                    f"container {container.id} did not exit after SIGKILL: its monitor recorded no exit "
                    f"within {kill_wait:g}s"
                )

    def _nri_stop(self, container: Container) -> None:
        """Tell plugins the container stopped, once (caller holds its lock)."""
        if self._nri is None or container.id in self._nri_stopped:
            return
        self._nri_stopped.add(container.id)
        self._nri.stop_container(self._nri_pod(container.sandbox_id), self.nri_view(container))

    def report_exit(self, container_id: str) -> None:
        """Tell NRI plugins that a container whose exit was learnt stopped, unless a StopContainer or
        RemoveContainer (which hold the lock this waits for) told them already, or it is gone."""
        if self._nri is None:
            return
        with lifecycle_change(self._nri), self._locked_unless_creating(container_id) as container:
            if container is not None and container.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
                self._nri_stop(container)

    def _nri_pod(self, sandbox_id: str, facts: SandboxFacts | None = None) -> NriPod:
        if facts is None:
            try:
                facts = self._sandboxes.sandbox_facts(sandbox_id)
            except PycrioError:
                return NriPod(id=sandbox_id)
        return NriPod(
            id=facts.id,
            name=facts.name,
            uid=facts.uid,
            namespace=facts.namespace,
            annotations=facts.annotations,
            runtime_handler=facts.runtime_handler,
            cgroup_parent=facts.cgroup_parent,
        )

    def nri_view(self, container: Container) -> NriContainer:
        """The container as NRI plugins are shown it (from the spec written for it)."""
        state = {
            ContainerState.CREATED: NriContainerState.CREATED,
            ContainerState.RUNNING: NriContainerState.RUNNING,
            ContainerState.EXITED: NriContainerState.STOPPED,
        }.get(container.state, NriContainerState.UNKNOWN)
        return container_from_spec(
            container.id,
            container.sandbox_id,
            container.config.name,
            container.config.labels,
            container.spec,
            state,
            pid=container.pid,
            created_at=container.created_at,
            started_at=container.started_at,
            finished_at=container.finished_at,
            exit_code=container.exit_code,
            status_reason=container.reason,
            status_message=container.message,
        )

    def nri_containers(self) -> list[NriContainer]:
        """Every container made (not those being created), for a plugin's Synchronize."""
        with self._index_lock:
            containers = [c for c in self._containers.values() if not c.creating]
        return [self.nri_view(c) for c in containers]

    def _kill(self, handler: RuntimeHandler, container: Container) -> None:
        """SIGKILL to the container's init. With a PID namespace of its own (the kubelet's default) that
        ends every process in it: the kernel kills a namespace's processes when its init dies. Sharing the
        pod's, the host's or another container's namespace, every process in the container's cgroup is
        killed first (runc 1.1 restores a checkpoint on cgroup v2 into the checkpointed container's cgroup,
        docs/containers.md, where that finds nothing: the init is killed after it all the same)."""
        if not _owns_pid_namespace(container.spec):
            handler.runtime.kill(container.id, SIGKILL, all_processes=True)
        handler.runtime.kill(container.id, SIGKILL)

    def _wait_exit(self, container: Container, timeout: float, take_lock: bool = False) -> bool:
        """True once the container exited, False after `timeout`. The caller holds the container's lock; or,
        with `take_lock`, the lock is taken only to look (and a container removed meanwhile is gone)."""
        deadline = self._monotonic() + timeout
        # A killed process is usually recorded within milliseconds: look again soon, then every 50 ms.
        delay = 0.002
        while True:
            if self._has_exited(container, take_lock):
                return True
            if self._monotonic() >= deadline:
                return False
            self._sleep(delay)
            delay = min(delay * 2, 0.05)

    def _has_exited(self, container: Container, take_lock: bool) -> bool:
        if take_lock:
            with container.lock:
                removed = self._containers.get(container.id) is not container
                return removed or self._has_exited(container, take_lock=False)
        self._refresh(container, probe_monitor=True)
        return container.state not in (ContainerState.RUNNING, ContainerState.CREATED)

    def _wait_monitor_gone(self, container_id: str, timeout: float) -> None:
        deadline = self._monotonic() + timeout
        while self._monitor.monitor_alive(container_id) and self._monotonic() < deadline:
            self._sleep(0.02)

    def remove(self, container_id: str) -> None:
        """Stop if running, then remove everything the container has on the host; unknown ids are fine.
        A container still being created is marked abandoned: its create undoes it when it returns."""
        with (
            lifecycle_change(self._nri),
            self._locked_unless_creating(container_id, abandon=True) as container,
        ):
            if container is None:
                return
            handler = self._runtimes.get(container.runtime_handler)
            self._refresh(container)
            if handler is not None:
                if (
                    container.state in (ContainerState.CREATED, ContainerState.RUNNING)
                    and not container.restore_from
                ):
                    self._kill(handler, container)
                    # Let the monitor record the exit and go before its files are removed, or it would
                    # write them again afterwards.
                    self._wait_exit(container, 10.0)
                    self._wait_monitor_gone(container.id, 5.0)
                self._delete_in_runtime(container, handler)
            self._remove_monitor_cgroup(container)
            self._monitor.cleanup(container.id)
            self._bundles.remove(container.id)
            self._rootfs.remove(container.id)
            self._remove_image_volumes(container)
            self._remove_checkpoint(container)
            self._store.delete(_KIND, container.id)
            self._release(container)
            self._events.publish(container.id, container.sandbox_id, ContainerEventType.DELETED)
            if self._nri is not None:
                self._refresh(container)
                self._nri_stop(container)
                self._nri_stopped.discard(container.id)
                self._nri.remove_container(self._nri_pod(container.sandbox_id), self.nri_view(container))

    def release_runtime(self, container_id: str) -> None:
        """Delete the OCI runtime's state of a container whose process has exited, as soon as the exit is
        noticed (the exit watcher calls this, on no RPC's path), so that RemoveContainer finds it done: what
        containerd's shim does when its task exits. Not under the container's lock, which a StopContainer
        holds until it has seen the exit: the delete runs alongside the end of the stop and the client's next
        call. Safe without the lock: the monitor's exit record is looked at first, the runtime deletes only
        a stopped container without force, and a container still CREATED waits for a StartContainer in
        progress (a process that exits at once is seen exiting before `<runtime> start` has returned). Its
        rootfs is unmounted then too (the writable layer stays until RemoveContainer). A failure is left to
        RemoveContainer, which deletes with force and waits for a delete in flight."""
        try:
            container = self._get(container_id)
        except (NotFound, InvalidArgument):
            return
        handler = self._runtimes.get(container.runtime_handler)
        if handler is None or container.creating or container.restore_from:
            return  # a create undoes itself; a restore has nothing in the runtime yet
        if container.state is ContainerState.CREATED:
            # A StartContainer may be in `<runtime> start`, whose last step (runc removes its exec fifo)
            # fails once the state is gone: wait for it; RUNNING is set only after the runtime returned.
            with container.lock:
                if self._containers.get(container.id) is not container:
                    return
        if self._monitor.exit_status(container.id) is None:
            return
        with suppress(PycrioError):
            self._delete_in_runtime(container, handler, force=False)
            if container.runtime_deleted:
                self._rootfs.unmount(container.id)  # as containerd's task delete: the files stay till Remove

    def _delete_in_runtime(self, container: Container, handler: RuntimeHandler, force: bool = True) -> None:
        """`<runtime> delete` of the container, once: a caller that finds one in flight waits for it (up to
        the create timeout, which bounds every runtime call) and, with `force`, deletes again only if that
        one failed; without `force` (the exit's own delete) it leaves it to the one in flight."""
        mine = threading.Event()
        with self._index_lock:
            pending = container.runtime_release
            if pending is None:
                container.runtime_release = mine
        if pending is not None:
            if not force:
                return
            pending.wait(self._create_timeout)
            if not container.runtime_deleted:
                handler.runtime.delete(container.id, force=True)
                container.runtime_deleted = True
            return
        try:
            handler.runtime.delete(container.id, force=force)
            container.runtime_deleted = True
        finally:
            mine.set()

    # --- status -----------------------------------------------------------------------------------------

    def _refresh(self, container: Container, probe_monitor: bool = False) -> None:
        """Learn a CREATED or RUNNING container's exit from its monitor (caller holds the lock). With
        `probe_monitor` (a status, a stop or remove waiting for the exit; not the lists, which are hot), a
        monitor that died without recording an exit is noticed too: see _monitor_lost."""
        if container.state not in (ContainerState.CREATED, ContainerState.RUNNING) or container.creating:
            return
        status = self._monitor.exit_status(container.id)
        if status is None:
            if probe_monitor:
                self._monitor_lost(container)
            return
        container.state = ContainerState.EXITED
        container.exit_code = status.exit_code
        # The exit file's mtime comes from the kernel's coarse clock and may read a little early.
        container.finished_at = max(int(status.finished_at.timestamp() * 1_000_000_000), container.started_at)
        if not container.started_at:
            container.started_at = container.finished_at
        oom_killed = status.oom_killed or self._oom_killed_in_pod(container, status.exit_code)
        container.reason = exit_reason(status.exit_code, oom_killed)
        container.pid = 0
        self._exit_learned(container)

    def _exit_learned(self, container: Container) -> None:
        """Record and announce an exit learnt while reading (a list, a status, the exit watcher). The reader
        does not wait for NRI plugins: a thread of its own tells them once it has the container's lock (a
        CRI stop or remove may tell them first)."""
        self._persist_learned(container)
        self._events.publish(container.id, container.sandbox_id, ContainerEventType.STOPPED)
        if self._nri is not None and container.id not in self._nri_stopped:
            threading.Thread(
                target=self.report_exit, args=(container.id,), name="nri-stop", daemon=True
            ).start()

    def _monitor_lost(self, container: Container) -> None:
        """conmon was killed (OOM killer, an operator): no exit will ever be recorded, so once the runtime
        says the process is gone the container is EXITED with an unknown code (255, as after a restart that
        finds it lost), or a stop would wait for an exit forever and a status would say RUNNING forever."""
        if container.restore_from or self._monitor.monitor_alive(container.id):
            return
        if self._monitor.exit_status(container.id) is not None:  # recorded just before conmon went
            self._refresh(container)
            return
        handler = self._runtimes.get(container.runtime_handler)
        try:
            state = handler.runtime.state(container.id) if handler is not None else None
        except PycrioError:
            return  # the runtime cannot say now; asked again at the next look
        if state is not None and state.status != "stopped":
            return  # still running without its monitor: a stop kills it through the runtime
        container.state = ContainerState.EXITED
        container.finished_at = self._now_ns()
        container.started_at = container.started_at or container.finished_at
        container.exit_code = 255
        container.reason = REASON_ERROR
        container.message = "the container's monitor (conmon) died; its exit code is unknown"
        container.pid = 0
        self._exit_learned(container)

    def look_at_monitors(self) -> list[str]:
        """A watched monitor process has exited (or the daemon has just restored its containers): learn what
        became of the containers whose monitor is gone, without waiting for anyone to ask (an evented
        kubelet relists only every few minutes). conmon writes the exit file before it exits, so the usual
        end is learnt from that file, as the exit watcher learns it (whichever looks first reports it,
        once). A monitor killed without writing it leaves a process that is gone too (EXITED, 255, see
        _monitor_lost) or one that runs on unmonitored. That one is left running, as cri-o leaves it (a stop
        kills it through the runtime); it is logged once, returned (for the metric), and its own process is
        watched from then on, so that its end is noticed the same way. Waits for each container's lock."""
        live = (ContainerState.CREATED, ContainerState.RUNNING)
        with self._index_lock:
            watched = {
                c.id: c
                for c in self._containers.values()
                if c.state in live and not c.creating and not c.restore_from
            }
        lost = []
        for container_id in self._monitor.exited_monitors(watched) if watched else ():
            container = watched[container_id]
            with container.lock:
                if self._containers.get(container_id) is container and self._monitor_exited(container):
                    lost.append(container_id)
        return lost

    def _monitor_exited(self, container: Container) -> bool:
        """True when the container runs on without its monitor and this is the first time that is seen."""
        live = (ContainerState.CREATED, ContainerState.RUNNING)
        self._refresh(container)  # the exit file conmon wrote before it exited: the usual end
        if container.state not in live or container.creating or container.restore_from:
            return False
        # Watched before the runtime is asked: a process that ends after the answer still wakes the watcher.
        self._monitor.watch_process(container.id, container.pid)
        self._monitor_lost(container)
        if container.state not in live or container.id in self._unmonitored:
            return False
        with self._index_lock:
            self._unmonitored.add(container.id)
        _log.error(
            "the container's monitor (conmon) died while the container runs; it runs on unmonitored",
            id=container.id,
            pid=container.pid,
        )
        return True

    def _oom_killed_in_pod(self, container: Container, exit_code: int) -> bool:
        """systemd driver: systemd removes a container's scope the moment its last process dies, often before
        conmon has read the scope's memory.events, so an OOM kill can go unrecorded. The pod's cgroup keeps
        counting its descendants' OOM kills: a container killed by SIGKILL while that count rose is taken as
        OOM-killed (with two such deaths in one pod at once, both are)."""
        if self._monitor_cgroups is None or exit_code != 128 + SIGKILL or container.pod_oom_kills < 0:
            return False
        now = self._monitor_cgroups.oom_kills(container.pod_cgroup)
        return now is not None and now > container.pod_oom_kills

    def status(self, container_id: str) -> Container:
        """Never waits behind a long operation (a stop's grace period): then the last known state is given."""
        container = self._get(container_id)
        if container.creating:
            raise NotFound(f"container {container_id} not found")
        if container.lock.acquire(blocking=False):
            try:
                self._refresh(container, probe_monitor=True)
            finally:
                container.lock.release()
        return _detached(container)

    def list_version(self) -> int:
        """Learn the exits the monitor recorded since the last look, then a number that differs whenever
        list_containers could answer differently than when it last had this number."""
        exited = self._monitor.exited()
        if exited:
            with self._index_lock:
                found = [self._containers.get(container_id) for container_id in exited]
            live = (ContainerState.CREATED, ContainerState.RUNNING)
            for container in found:
                # As list_containers: a container whose lock is held (a stop) is refreshed by its holder.
                if (
                    container is not None
                    and container.state in live
                    and container.lock.acquire(blocking=False)
                ):
                    try:
                        self._refresh(container)
                    finally:
                        container.lock.release()
        return self._generation.value

    def list_containers(self, selector: ContainerFilter | None = None) -> list[Container]:
        selector = selector or ContainerFilter()
        with self._index_lock:
            candidates = [c for c in self._containers.values() if not c.creating]
        # One look at the monitor's exits for all containers; only those with a recorded exit are refreshed.
        exited = self._monitor.exited()
        result = []
        for container in candidates:
            if selector.id and not container.id.startswith(selector.id):
                continue
            if selector.sandbox_id and container.sandbox_id != selector.sandbox_id:
                continue
            if any(container.config.labels.get(k) != v for k, v in selector.labels.items()):
                continue
            if container.id in exited and container.lock.acquire(blocking=False):
                try:
                    self._refresh(container)
                finally:
                    container.lock.release()
            if selector.state is not None and container.state is not selector.state:
                continue
            result.append(_detached(container))
        return sorted(result, key=lambda c: c.created_at)

    # --- exec / update / logs ---------------------------------------------------------------------------

    def exec_sync(self, container_id: str, command: list[str], timeout: float) -> ExecResult:
        if not command:
            raise InvalidArgument("cmd: empty")
        if not command[0]:  # the kubelet's /run endpoint without a command sends [""]
            raise InvalidArgument("cmd[0]: empty executable name")
        if timeout < 0:
            raise InvalidArgument(f"timeout: {timeout} is negative")
        timeout = min(timeout, MAX_REQUEST_TIMEOUT)
        with self._locked_running(container_id) as container:
            runtime = self._handler(container.runtime_handler).runtime
            running_id = container.id
            process = dict(container.spec["process"])
        process["args"] = list(command)
        process["terminal"] = False
        # The lock is released: a long exec must not block status, stop or other execs.
        return runtime.exec_sync(running_id, process, timeout)

    def running(self, container_id: str) -> Container:
        """The container (by id or prefix); FailedPrecondition unless it is RUNNING."""
        with self._locked_running(container_id) as container:
            return _detached(container)

    def exec(self, container_id: str, command: list[str], streams: ProcessStreams) -> int:
        """Streaming Exec: `command` in the running container wired to the client's streams."""
        with self._locked_running(container_id) as container:
            runtime = self._handler(container.runtime_handler).runtime
            running_id = container.id
            process = dict(container.spec["process"])
        process["args"] = list(command)
        process["terminal"] = streams.tty
        # The lock is released: an interactive exec may last as long as the client likes.
        return runtime.exec(running_id, process, streams)

    def attach(self, container_id: str, streams: ProcessStreams) -> None:
        """Streaming Attach: join the running container's main process through its monitor."""
        with self._locked_running(container_id) as container:
            running_id, config = container.id, container.config
        self._monitor.attach(running_id, streams, config.stdin, config.stdin_once, config.tty)

    def update_resources(self, container_id: str, resources: Resources, from_nri: bool = False) -> None:
        """Apply new limits (what the request leaves unset is kept); when the runtime refuses, the old ones
        are put back and the error is raised. NRI plugins may change them first (not for the updates they
        ask for themselves)."""
        resources_to_oci(resources, self._host)
        with self._locked(container_id) as container:
            self._refresh(container)
            if container.state not in (ContainerState.CREATED, ContainerState.RUNNING):
                raise FailedPrecondition(f"container {container.id} is {container.state.name}")
            resources = container.resources.updated_by(resources)
            pod = None
            if self._nri is not None and not from_nri:
                pod = self._nri_pod(container.sandbox_id)
                wanted = self._nri.update_container(pod, self.nri_view(container), nri_resources(resources))
                resources = cri_resources(resources, wanted)
            new = resources_to_oci(resources, self._host)
            handler = self._handler(container.runtime_handler)
            old = resources_to_oci(container.resources, self._host)
            try:
                handler.runtime.update(container.id, new)
            except PycrioError:
                with suppress(PycrioError):
                    handler.runtime.update(container.id, old)
                raise
            container.resources = resources
            spec_resources = container.spec.setdefault("linux", {}).setdefault("resources", {})
            for key in ("cpu", "memory", "hugepageLimits", "unified"):
                spec_resources.pop(key, None)
            spec_resources.update(new)
            self._persist(container)
            if self._nri is not None and pod is not None:
                self._nri.post_update_container(pod, self.nri_view(container))

    def apply_nri_updates(self, updates: "Sequence[NriUpdate]") -> "list[NriUpdate]":
        """Resource updates NRI plugins asked for (through runc update, as UpdateContainerResources); the
        ones that failed and may not be ignored are returned."""
        failed = []
        for update in updates:
            try:
                with self._locked(update.container_id) as container:
                    base = container.resources
                self.update_resources(
                    update.container_id, cri_resources(base, update.resources), from_nri=True
                )
            except PycrioError:
                if not update.ignore_failure:
                    failed.append(update)
        return failed

    def reopen_log(self, container_id: str) -> None:
        with self._locked_running(container_id) as container:
            running_id = container.id
        # Outside the lock: conmon's reopen is waited for, and status must not queue behind it.
        self._monitor.reopen_log(running_id)

    # --- pods and images --------------------------------------------------------------------------------

    def containers_of(self, sandbox_id: str) -> list[str]:
        with self._index_lock:
            return [c.id for c in self._containers.values() if c.sandbox_id == sandbox_id]

    def stop_all(self, sandbox_id: str, timeout: float) -> None:
        for container_id in self.containers_of(sandbox_id):
            try:
                self.stop(container_id, timeout)
            except NotFound:
                continue

    def remove_all(self, sandbox_id: str) -> None:
        for container_id in self.containers_of(sandbox_id):
            self.remove(container_id)

    def containers_using(self, image_id: str) -> list[str]:
        """The images area's ImageUsers: containers created from the image and not yet removed."""
        with self._index_lock:
            return sorted(c.id for c in self._containers.values() if c.image_id == image_id)

    # --- checkpoint / restore -----------------------------------------------------------------------------

    def check_checkpoint_support(self) -> dict[str, str]:
        """Ask each runtime handler whether it can checkpoint here (at start-up: `criu check` takes a while);
        the reasons are logged, and a restore's refusal says them."""
        refusals = {}
        for name, handler in sorted(self._runtimes.items()):
            if self._checkpoints is None:
                refusals[name] = "switched off (runtime.enable_criu_support = false)"
            else:
                refusals[name] = handler.runtime.checkpoint_support()
        self._checkpoint_refusals = refusals
        return dict(refusals)

    def checkpoint_refusal(self, handler_name: str = "") -> str:
        """Why the handler (the default one when unnamed) cannot checkpoint here; "" when it can."""
        if not self._checkpoint_refusals:
            self.check_checkpoint_support()
        return self._checkpoint_refusals.get(handler_name or self._default_runtime, "")

    def checkpoint(self, container_id: str, location: str, timeout: float) -> None:
        """CheckpointContainer: the running container's processes (which go on running), its spec and its
        file changes, archived at `location`. `timeout` seconds for the dump (0: the subprocess timeout).
        Refused in the words the kubelet knows (checkpoint_refusal says why)."""
        if self.checkpoint_refusal():  # before any look-up, as cri-o
            raise NotSupported(checkpoints.CHECKPOINT_NOT_IMPLEMENTED)
        checkpoints.check_location(location)
        if timeout < 0:
            raise InvalidArgument(f"timeout: {timeout} is negative")
        timeout = min(timeout, MAX_REQUEST_TIMEOUT) if timeout else self._create_timeout
        with self._locked_running(container_id) as container:
            if self.checkpoint_refusal(container.runtime_handler) or self._checkpoints is None:
                raise NotSupported(checkpoints.CHECKPOINT_NOT_IMPLEMENTED)
            handler = self._handler(container.runtime_handler)
            work = self._checkpoints.prepare(container.id)
            try:
                handler.runtime.checkpoint(container.id, work / CRIU_IMAGES, work, True, timeout)
                dumps = CheckpointDumps(
                    config=checkpoints.config_dump(
                        container_id=container.id,
                        name=container.config.name,
                        image=container.config.image,
                        image_id=container.image_id,
                        image_name=container.image_name,
                        runtime=container.runtime_handler,
                        created_ns=container.created_at,
                        now_ns=self._now_ns(),
                        restored=False,
                    ),
                    spec=container.spec,
                )
                layer = self._rootfs.writable_layer(container.id)
                skips = checkpoints.diff_skips(container.spec)
                self._checkpoints.export(container.id, location, dumps, layer, skips, container.log_path)
            finally:
                self._checkpoints.remove(container.id)

    def _restored_config(
        self, request: ContainerConfig, sandbox: SandboxFacts, archive: str
    ) -> tuple[ContainerConfig, ContainerImage]:
        """The config and image of a container restored from `archive` into `sandbox`."""
        refusal = self.checkpoint_refusal(sandbox.runtime_handler)
        if refusal or self._checkpoints is None:
            raise NotSupported(checkpoints.unsupported(refusal))
        dumps = self._checkpoints.read_dumps(archive)
        config = checkpoints.restored_config(request, dumps.spec, sandbox.uid, archive)
        candidates = checkpoints.archive_images(dumps.config)
        for candidate in candidates:
            try:
                image = self._rootfs.resolve_image(candidate)
            except (NotFound, InvalidArgument):
                continue
            return replace(config, image=image.name), image
        raise NotFound(
            f"image.image: the image of checkpoint {archive!r} is not pulled ({', '.join(candidates)})"
        )

    def _restore_processes(self, container: Container, handler: RuntimeHandler) -> None:
        """StartContainer of a restored container: the monitor runs `<runtime> restore` from its images."""
        sandbox = self._sandboxes.sandbox_facts(container.sandbox_id)
        request = replace(self._monitored(container, handler), restore_from=container.restore_from)
        created = self._monitor.create(request, timeout=self._create_timeout)
        self._monitor_created(container, sandbox, created)
        container.restore_from = ""
        self._remove_checkpoint(container)

    def _never_restored(self, container: Container) -> None:
        """A stop of a restored container that was never started: nothing runs, so it is simply over."""
        container.state = ContainerState.EXITED
        container.finished_at = self._now_ns()
        container.started_at = container.started_at or container.finished_at
        container.exit_code = 128 + SIGKILL
        container.reason = REASON_ERROR
        container.message = "stopped before its restore from a checkpoint"
        container.restore_from = ""
        self._remove_checkpoint(container)
        self._persist(container)
        self._events.publish(container.id, container.sandbox_id, ContainerEventType.STOPPED)

    def _remove_checkpoint(self, container: Container) -> None:
        if self._checkpoints is not None:
            self._checkpoints.remove(container.id)

    # --- restart ----------------------------------------------------------------------------------------

    def restore(self) -> None:
        """Reload persisted containers and reconcile them with the runtime and the monitor's exit records."""
        for container_id, document in self._store.list(_KIND).items():
            try:
                container = Container.from_document(document)
            except (KeyError, TypeError, ValueError) as err:
                # Kept for whoever investigates (it may name a mounted rootfs), as the pods service does.
                _log.error("unreadable container record left as it is", id=container_id, error=str(err))
                continue
            with self._index_lock:
                self._containers[container.id] = container
            self._names.restored(container.name, container.id, container.fingerprint, Handover.ALWAYS)
            handler = self._runtimes.get(container.runtime_handler)
            if container.creating:
                self._undo_create(container, handler)
                continue
            with container.lock:
                if from_earlier_boot(container.boot_id, self._host.boot_id):
                    self._settle_after_reboot(container)
                else:
                    self._reconcile(container, handler)
                if container.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
                    # Every plugin is synchronized by this daemon and sees it stopped there: StopContainer
                    # now would repeat what an earlier daemon said, or what the snapshot shows.
                    self._nri_stopped.add(container.id)
            self._events.known(container.id, _EVENTS_BEFORE[container.state])
        self._generation.bump()  # restored containers that needed no reconciling were not persisted

    def _settle_after_reboot(self, container: Container) -> None:
        """A container made in an earlier boot: none of its processes survived the reboot, and the pid, the
        monitor's files and the runtime's state it had mean nothing in this boot. It is EXITED with an
        unknown exit code at once, without asking the runtime (as containerd reports a container whose
        task is gone: 255, "Unknown"); one whose exit was learnt before keeps it."""
        if container.state is not ContainerState.EXITED:
            container.state = ContainerState.EXITED
            container.finished_at = container.finished_at or self._now_ns()
            container.started_at = container.started_at or container.finished_at
            container.exit_code = 255
            container.reason = REASON_UNKNOWN
            container.message = "the node rebooted: its processes ended with the boot they ran in"
        container.pid = 0
        container.restore_from = ""  # a restore from a checkpoint that never ran; its images go at remove
        container.boot_id = self._host.boot_id
        self._persist(container)
        _log.info("container of an earlier boot is over", id=container.id, reason=container.reason)

    def _reconcile(self, container: Container, handler: RuntimeHandler | None) -> None:
        self._refresh(container)
        if container.state not in (ContainerState.CREATED, ContainerState.RUNNING) or container.restore_from:
            return  # a container waiting for its restore has nothing in the runtime yet
        state = handler.runtime.state(container.id) if handler is not None else None
        if state is None or state.status == "stopped":
            if not self._monitor.monitor_alive(container.id):
                self._refresh(container)
            if container.state in (ContainerState.CREATED, ContainerState.RUNNING):
                container.state = ContainerState.UNKNOWN if state is None else ContainerState.EXITED
                container.finished_at = container.finished_at or self._now_ns()
                container.exit_code = 255 if state is None else container.exit_code
                container.reason = REASON_ERROR
                container.message = "the container was lost while pycrio was not running"
                container.pid = 0
                self._persist(container)
        elif state.status == "running" and container.state is ContainerState.CREATED:
            container.state = ContainerState.RUNNING
            container.started_at = container.started_at or self._now_ns()
            self._persist(container)


# What a restored container in each state has already been reported as (by an earlier daemon).
_E = ContainerEventType
_EVENTS_BEFORE = {
    ContainerState.CREATED: (_E.CREATED,),
    ContainerState.RUNNING: (_E.CREATED, _E.STARTED),
    ContainerState.EXITED: (_E.CREATED, _E.STARTED, _E.STOPPED),
    ContainerState.UNKNOWN: (_E.CREATED, _E.STARTED, _E.STOPPED),
}


def _log_path(sandbox: SandboxFacts, config: ContainerConfig) -> str:
    if not config.log_path:
        return ""
    if config.log_path.startswith("/") or ".." in config.log_path.split("/"):
        raise InvalidArgument(f"log_path: {config.log_path!r} must be relative to the sandbox log directory")
    check_path_length("log_path", config.log_path)
    if not sandbox.log_directory:
        raise InvalidArgument("log_path: the sandbox has no log directory")
    return sandbox.log_directory.rstrip("/") + "/" + config.log_path


# File systems the runtime mounts over the image's directories: a working directory there is never the
# image's, and `/proc/self/fd/<n>` (or `/dev/fd/<n>`, a link into it) made runc before 1.1.12 start the
# process in a directory of the host (CVE-2024-21626, "Leaky Vessels").
_RUNTIME_FILESYSTEMS = ("/proc", "/sys", "/dev")


def _check_working_dir(cwd: str, seen: str) -> None:
    """Refuse a working directory in /proc, /sys or /dev, once the image's symlinks are followed."""
    for top in _RUNTIME_FILESYSTEMS:
        if seen == top or seen.startswith(top + "/"):
            shown = repr(cwd[:200]) if seen == cwd else f"{cwd[:200]!r} (resolving to {seen[:200]!r})"
            raise InvalidArgument(
                f"working_dir (or the image's WorkingDir): {shown} is in {top}, which the runtime mounts "
                "over the image; a working directory there is refused"
            )


def _owns_pid_namespace(spec: Mapping[str, Any]) -> bool:
    """Whether the OCI spec gives the container a new PID namespace (a `pid` entry without a path)."""
    namespaces = spec.get("linux", {}).get("namespaces", [])
    return any(ns.get("type") == "pid" and not ns.get("path") for ns in namespaces)


def _signal_number(name: str) -> int:
    if name in SIGNALS:
        return SIGNALS[name]
    if name.startswith("SIGRTMIN+"):
        return SIGNALS["SIGRTMIN"] + int(name.removeprefix("SIGRTMIN+"))
    return SIGNALS["SIGTERM"]


def _fingerprint(sandbox_id: str, config: ContainerConfig) -> str:
    text = json.dumps([sandbox_id, _to_plain(config)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _layer_idmap(sandbox: SandboxFacts) -> LayerIdmap | None:
    """A pod in a user namespace gets its containers' layers (and image volumes) idmapped into it."""
    userns = sandbox.user_namespace
    if userns is None:
        return None
    return LayerIdmap(sandbox.userns_path, userns.root_uid, userns.root_gid)


def image_volume_id(container_id: str, index: int) -> str:
    """The id under which the mount at `index` holds its image's file system."""
    return f"{container_id}-image-volume-{index}"


def _image_sub_path(where: str, sub_path: str) -> str:
    """A relative path inside the image, normalised; nothing that climbs out of it."""
    parts = [p for p in sub_path.split("/") if p not in ("", ".")]
    if sub_path.startswith("/") or ".." in parts:
        raise InvalidArgument(f"{where}: {sub_path!r} must be a relative path inside the image")
    return "/".join(parts)


def _to_plain(value: Any) -> Any:
    """Dataclasses, enums and tuples as JSON values (enums by name)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(cls: Any, value: Any) -> Any:
    """The inverse of _to_plain, guided by the dataclass field types."""
    if value is None:
        return None
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return cls(**{name: _from_plain(hints[name], v) for name, v in value.items() if name in hints})
    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        return _from_plain(inner[0], value)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return cls[value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_plain(args[0], v) for v in value)
        return tuple(_from_plain(a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        return dict(value)
    return value
