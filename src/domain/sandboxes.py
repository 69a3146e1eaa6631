"""The pod sandbox lifecycle: RunPodSandbox, StopPodSandbox, RemovePodSandbox, status and list, and the
pod-level resources of an in-place resize (UpdatePodSandboxResources).

What this solves:
- Names are reserved per pod metadata (domain/reservations.py). A kubelet that timed out retries
  RunPodSandbox with the same metadata: a retry that arrives while the first call is still working waits
  for it, and a sandbox whose caller went away is handed to the retry (cri-o's resourcestore). Any other
  duplicate is AlreadyExists.
- Intent is persisted before each side effect, so a crash mid-creation is rolled back on restart (a CNI
  ADD that may have run is undone with DEL).
- Stop and remove are idempotent and never hang on the network: CNI DEL is retried within its own
  deadline, then given up with a warning.
- One lock per sandbox; the map lock is never held across a port call. List and status answer from memory.
"""

import functools
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import structlog

from domain.boots import from_earlier_boot
from domain.cgroup_paths import cgroup_levels, infra_cgroup
from domain.container_config import Resources
from domain.errors import InvalidArgument, NotFound, PycrioError
from domain.events import ContainerEventType, LifecycleLedger, unreported
from domain.generation import Generation
from domain.nri import NriPod
from domain.nri_relay import NriRelay, lifecycle_change
from domain.nri_spec import nri_resources
from domain.oci_spec import settable_hugepage_sizes
from domain.pod_file_text import hosts, resolv_conf
from domain.pod_resources import pod_cgroup_limits
from domain.reservations import Handover, Reservations
from domain.sandbox_model import NetworkPhase, PodSandbox, SandboxConfig, SandboxState
from domain.sandbox_validation import bandwidth_limits, validated
from domain.userns import check_handler_supports
from ports.cgroups import CgroupLimits, Cgroups
from ports.hugepages import HugePages
from ports.infra import InfraProcess, InfraProcesses, InfraSpec
from ports.namespaces import NamespaceRequest, Namespaces
from ports.network import Network, PodNetworkRequest
from ports.pod_containers import PodContainers
from ports.pod_files import PodFileContents, PodFiles
from ports.state_store import StateStore

_log = structlog.get_logger("pycrio.sandboxes")
STATE_KIND = "sandboxes"


@dataclass(frozen=True)
class SandboxSettings:
    runtimes: tuple[str, ...] = ("runc",)
    default_runtime: str = "runc"
    # Handlers that cannot run pods in a user namespace, with the reason (from their `features` output).
    userns_refusals: dict[str, str] = field(default_factory=dict)
    cgroup_driver: str = "cgroupfs"
    default_cgroup_parent: str = "/pycrio"
    node_hostname: str = "localhost"
    shm_size_bytes: int = 64 * 1024 * 1024
    # Seconds CNI DEL is retried before stop/remove give up on it.
    network_teardown_deadline: float = 30.0
    # The CRI says a pod's remaining containers are forcibly terminated on StopPodSandbox (the kubelet has
    # already given each its grace period through StopContainer), so they get SIGKILL at once, as containerd.
    container_stop_timeout: float = 0.0
    infra_stop_timeout: float = 10.0
    # Seconds a duplicate RunPodSandbox waits for the first one to finish.
    creation_wait: float = 240.0
    # The kernel's boot id ("" when unknown): pods made in another boot are settled at start-up.
    boot_id: str = ""


# What a restored pod in each state has already been reported as (by an earlier daemon).
_E = ContainerEventType
_EVENTS_BEFORE = {
    SandboxState.READY: (_E.CREATED, _E.STARTED),
    SandboxState.NOTREADY: (_E.CREATED, _E.STARTED, _E.STOPPED),
}


@dataclass(frozen=True)
class SandboxFilter:
    id: str = ""
    state: SandboxState | None = None
    labels: dict[str, str] = field(default_factory=dict)


class SandboxService:
    def __init__(
        self,
        store: StateStore,
        network: Network,
        namespaces: Namespaces,
        infra: InfraProcesses,
        files: PodFiles,
        cgroups: Cgroups,
        containers: PodContainers,
        settings: SandboxSettings,
        hugepages: HugePages,
        clock: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        events: LifecycleLedger | None = None,
        nri: NriRelay | None = None,  # None: NRI is off
    ) -> None:
        self._nri = nri
        self._store = store
        self._network = network
        self._namespaces = namespaces
        self._infra = infra
        self._files = files
        self._cgroups = cgroups
        self._containers = containers
        self._settings = settings
        self._hugepage_sizes = settable_hugepage_sizes(hugepages)
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        # Each pod's infra container is reported as a container whose id is the sandbox id (as cri-o).
        self._events = events or unreported()
        self._lock = threading.Lock()
        self._sandboxes: dict[str, PodSandbox] = {}
        self._names = Reservations("pod sandbox", wait=settings.creation_wait)
        self._object_locks: dict[str, threading.Lock] = {}
        # Bumped after every change a list would show (list_version); the ids of READY pods whose infra
        # process was seen dead, so that each death bumps it once.
        self._generation = Generation()
        self._infra_gone: set[str] = set()
        # The infra processes list_version looks at, with the generation they were gathered at: the READY
        # pods change only with the generation, so a quiet poll does not walk every pod.
        self._watched: tuple[int, dict[InfraProcess, PodSandbox], list[InfraProcess]] | None = None
        self._restore()

    # ---- RunPodSandbox -------------------------------------------------------------------------------

    def run(
        self,
        config: SandboxConfig,
        runtime_handler: str = "",
        caller_gone: Callable[[], bool] = lambda: False,
    ) -> str:
        """Create a READY sandbox and return its id."""
        config = validated(config)
        oci_runtime = self._resolve_handler(runtime_handler)
        if config.user_namespace is not None:
            refusal = self._settings.userns_refusals.get(oci_runtime)
            check_handler_supports(oci_runtime, refusal is None, refusal or "")
        # A bad cgroup parent is the caller's mistake: refuse it before anything is made.
        infra_cgroup(self._settings.cgroup_driver, config.cgroup_parent or self._default_cgroup_parent(), "")
        key = config.metadata.reservation_key
        sandbox_id = self._new_id()
        # Every request with this metadata is the same pod: no fingerprint tells them apart.
        finished = self._names.reserve(key, sandbox_id, "")
        if finished is not None:
            _log.info("handing a finished sandbox to a retried RunPodSandbox", id=finished)
            return finished
        with self._lock:
            sandbox = self._reserve(sandbox_id, config, runtime_handler, oci_runtime)
        with lifecycle_change(self._nri), self._object_locks[sandbox.id]:
            announced = False  # NRI plugins heard RunPodSandbox
            try:
                check_caller = functools.partial(
                    self._names.check_caller, key, sandbox.id, caller_gone, "RunPodSandbox"
                )
                self._create(sandbox, check_caller)
                check_caller()
                if self._nri is not None:
                    # Before READY: nobody lists the pod while plugins hear of it; an error undoes it.
                    self._nri.run_pod_sandbox(self.nri_pod(sandbox))
                    announced = True
                sandbox.state = SandboxState.READY
                self._save(sandbox)
                _log.info("pod sandbox ready", id=sandbox.id, name=sandbox.name, ips=sandbox.ips)
                check_caller()
            except BaseException:
                self._roll_back(sandbox)
                if announced and self._nri is not None:
                    # As containerd: plugins that heard of the pod hear it go (no StopPodSandbox).
                    self._nri.remove_pod_sandbox(self.nri_pod(sandbox))
                raise
            self._events.publish(sandbox.id, sandbox.id, ContainerEventType.CREATED)
            self._events.publish(sandbox.id, sandbox.id, ContainerEventType.STARTED)
            # A caller that went away leaves the pod to the retry waiting for it, once.
            self._names.created(key, sandbox.id, Handover.ONCE if caller_gone() else Handover.NEVER)
        return sandbox.id

    @staticmethod
    def nri_pod(sb: PodSandbox) -> NriPod:
        """The pod as NRI plugins are shown it."""
        meta = sb.config.metadata
        return NriPod(
            id=sb.id,
            name=meta.name,
            uid=meta.uid,
            namespace=meta.namespace,
            labels=tuple(sb.config.labels.items()),
            annotations=tuple(sb.config.annotations.items()),
            runtime_handler=sb.runtime_handler,
            cgroup_parent=sb.cgroup_parent,
            cgroups_path=sb.cgroup_path,
            pid=sb.infra.pid if sb.infra else 0,
            ips=tuple(sb.ips),
        )

    def nri_pods(self) -> list[NriPod]:
        """Every pod that is made (for a plugin's Synchronize)."""
        with self._lock:
            pods = [sb for sb in self._sandboxes.values() if sb.state != SandboxState.CREATING]
        return [self.nri_pod(sb) for sb in pods]

    def _new_id(self) -> str:
        with self._lock:
            sandbox_id = secrets.token_hex(32)
            while sandbox_id in self._sandboxes:
                sandbox_id = secrets.token_hex(32)
            return sandbox_id

    def _resolve_handler(self, handler: str) -> str:
        name = handler or self._settings.default_runtime
        if name not in self._settings.runtimes:
            raise InvalidArgument(
                f"runtime handler {handler!r} is not configured (known: {', '.join(self._settings.runtimes)})"
            )
        return name

    def _default_cgroup_parent(self) -> str:
        if self._settings.cgroup_driver == "systemd" and not self._settings.default_cgroup_parent.endswith(
            ".slice"
        ):
            return "system.slice"
        return self._settings.default_cgroup_parent

    def _reserve(self, sandbox_id: str, config: SandboxConfig, handler: str, oci_runtime: str) -> PodSandbox:
        """Called with the map lock held, once the name is reserved."""
        sandbox = PodSandbox(
            id=sandbox_id,
            config=config,
            runtime_handler=handler,
            oci_runtime=oci_runtime,
            created_at=self._clock(),
            cgroup_driver=self._settings.cgroup_driver,
            boot_id=self._settings.boot_id,
        )
        self._sandboxes[sandbox_id] = sandbox
        self._object_locks[sandbox_id] = threading.Lock()
        return sandbox

    def _create(self, sb: PodSandbox, check_caller: Callable[[], None]) -> None:
        config = sb.config
        options = config.namespace_options
        check_caller()
        self._save(sb)

        parent = config.cgroup_parent or self._default_cgroup_parent()
        sb.cgroup_parent, sb.cgroup_path = infra_cgroup(sb.cgroup_driver, parent, sb.id)
        self._create_cgroups(sb)

        check_caller()
        sb.hostname = config.hostname or (
            self._settings.node_hostname if options.host_network else sb.id[:12]
        )
        sb.namespaces = self._namespaces.create(
            sb.id,
            NamespaceRequest(
                network=not options.host_network,
                ipc=not options.host_ipc,
                uts=not options.host_network,
                hostname=sb.hostname,
                sysctls=config.sysctls,
                user_namespace=config.user_namespace,
            ),
        )
        self._save(sb)

        check_caller()
        procs = tuple(self._cgroups.procs_files(sb.cgroup_path)) if sb.cgroup_driver == "cgroupfs" else ()
        sb.infra = self._infra.start(
            InfraSpec(
                sandbox_id=sb.id,
                network=sb.namespaces.network,
                ipc=sb.namespaces.ipc,
                uts=sb.namespaces.uts,
                user=sb.namespaces.user,
                new_pid_namespace=not options.host_pid,
                cgroup_procs=procs,
            )
        )
        self._save(sb)
        if sb.cgroup_driver == "systemd":
            self._cgroups.attach(sb.cgroup_path, sb.infra.pid)

        check_caller()
        if not options.host_network:
            sb.network_phase = NetworkPhase.ADDING
            self._save(sb)
            try:
                sb.attachment = self._network.setup(self._network_request(sb))
            except BaseException:
                sb.network_phase = NetworkPhase.NONE  # setup undid its own work
                raise
            sb.network_phase = NetworkPhase.ATTACHED
            self._save(sb)

        check_caller()
        sb.files = self._files.write(
            sb.id,
            PodFileContents(
                hostname=sb.hostname,
                hosts=None if options.host_network else hosts(sb.hostname, sb.ips),
                resolv_conf=resolv_conf(config.dns) if config.dns is not None else None,
                private_shm=not options.host_ipc,
                shm_size_bytes=self._settings.shm_size_bytes,
                log_directory=config.log_directory,
                owner=(
                    (config.user_namespace.root_uid, config.user_namespace.root_gid)
                    if config.user_namespace is not None
                    else (0, 0)
                ),
            ),
        )

    def _roll_back(self, sb: PodSandbox) -> None:
        """Undo whatever _create made, best effort, and release the name."""
        _log.warning("rolling back pod sandbox", id=sb.id, name=sb.name)
        self._teardown_network(sb, give_up_quietly=True)
        for step in (self._stop_infra, self._release_host_resources):
            try:
                step(sb)
            except Exception as err:
                _log.warning("rollback step failed", id=sb.id, step=step.__name__, error=str(err))
        self._forget(sb)

    # ---- StopPodSandbox / RemovePodSandbox -----------------------------------------------------------

    def stop(self, sandbox_id: str) -> None:
        """Stop the pod's containers, its infra process and its network. An absent pod is not an error."""
        sb, lock = self._lookup_for_change(sandbox_id)
        if sb is None:
            return
        with lifecycle_change(self._nri), lock:
            if self._sandboxes.get(sb.id) is not sb:
                return  # removed while we waited
            self._stop_locked(sb)

    def _stop_locked(self, sb: PodSandbox) -> None:
        # A pod whose infra process died on its own reported STOPPED when that was seen (_infra_died).
        was_ready = self._observed(sb).state == SandboxState.READY
        self._containers.stop_all(sb.id, self._settings.container_stop_timeout)
        self._stop_infra(sb)
        self._teardown_network(sb, give_up_quietly=False)
        if sb.state != SandboxState.NOTREADY:
            sb.state = SandboxState.NOTREADY
            self._save(sb)
            _log.info("pod sandbox stopped", id=sb.id, name=sb.name)
        if was_ready:
            self._events.publish(sb.id, sb.id, ContainerEventType.STOPPED)
        if self._nri is not None and not sb.nri_stop_reported:
            sb.nri_stop_reported = True
            self._save(sb)  # before plugins hear it: at most once, even across a restart
            self._nri.stop_pod_sandbox(self.nri_pod(sb))

    def remove(self, sandbox_id: str) -> None:
        """Stop it if needed, remove its containers and everything made for it. Absent is not an error."""
        sb, lock = self._lookup_for_change(sandbox_id)
        if sb is None:
            return
        with lifecycle_change(self._nri), lock:
            if self._sandboxes.get(sb.id) is not sb:
                return
            self._stop_locked(sb)
            with self._events.removal(sb.id, sb.id):
                self._containers.remove_all(sb.id)
                self._release_host_resources(sb)
                self._forget(sb)
            if self._nri is not None:
                self._nri.remove_pod_sandbox(self.nri_pod(sb))
            _log.info("pod sandbox removed", id=sb.id, name=sb.name)

    def _stop_infra(self, sb: PodSandbox) -> None:
        # With no pid saved (a crash right after starting it) the adapter finds it by the sandbox id.
        self._infra.stop(sb.id, sb.infra, self._settings.infra_stop_timeout)

    def _teardown_network(self, sb: PodSandbox, give_up_quietly: bool, retry: bool = True) -> None:
        """CNI DEL, retried until the deadline (tried once without `retry`); after that the pod goes on
        without it (logged)."""
        if sb.network_phase not in (NetworkPhase.ADDING, NetworkPhase.ATTACHED):
            return
        request = self._network_request(sb)
        if request.netns_path and not self._namespaces.exists(request.netns_path):
            # Gone (a reboot, an unmounted pin): DEL without one, as the CNI spec allows and containerd
            # does. The bridge plugin fails DEL on a path that is no namespace, and would keep the address.
            request = replace(request, netns_path="")
        deadline = self._monotonic() + self._settings.network_teardown_deadline
        delay = 0.2
        while True:
            try:
                self._network.teardown(request, sb.attachment, max(deadline - self._monotonic(), 0.1))
                break
            except Exception as err:
                if not retry or self._monotonic() + delay > deadline:
                    level = _log.info if give_up_quietly else _log.warning
                    level("giving up on network teardown", id=sb.id, error=str(err))
                    return
                _log.info("network teardown failed, retrying", id=sb.id, error=str(err))
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
        sb.network_phase = NetworkPhase.DETACHED
        if sb.id in self._sandboxes:
            self._save(sb)

    def _release_host_resources(self, sb: PodSandbox) -> None:
        """Files, namespaces and cgroups; each step is idempotent so a failed remove can be retried."""
        self._files.remove(sb.id)
        self._namespaces.remove(sb.id)
        by_path: dict[str, list[str]] = {}
        for hierarchy, dirs in sb.cgroup_dirs.items():
            for path in dirs:
                by_path.setdefault(path, []).append(hierarchy)
        for path in sorted(by_path, key=lambda p: -p.count("/")):
            if path == sb.cgroup_path:
                self._cgroups.remove(path, by_path[path])  # still busy: the remove fails and is retried
                continue
            try:
                self._cgroups.remove(path, by_path[path])
            except PycrioError as err:
                # Another pod still uses it; the last one of them removes it.
                _log.info("cgroup parent kept", path=path, error=str(err))

    def _create_cgroups(self, sb: PodSandbox) -> None:
        """Make the infra cgroup and its missing parents, recording first, per hierarchy, what will be
        pycrio's: the directories missing now, and ancestors another pod of this daemon made or is making (so
        that the last of them removes those). Anything else that exists (the kubelet's QoS tree) is never in
        the record."""
        wanted = (*cgroup_levels(sb.cgroup_parent), sb.cgroup_path)
        # cgroupfs makes the infra cgroup now. systemd makes the slices now and the infra scope with the infra
        # process (a scope cannot be empty), so that scope is pycrio's from the start.
        systemd = sb.cgroup_driver == "systemd"
        target = sb.cgroup_parent if systemd else sb.cgroup_path
        later = {h: (sb.cgroup_path,) for h in self._cgroups.hierarchies()} if systemd else {}

        def record(made: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
            # Read afresh: a pod that planned a level this one then found made is that level's maker.
            shared = self._pycrio_cgroup_dirs(sb.id)
            dirs = {
                hierarchy: [
                    p
                    for p in wanted
                    if p in made.get(hierarchy, ())
                    or p in shared.get(hierarchy, ())
                    or p in later.get(hierarchy, ())
                ]
                for hierarchy in self._cgroups.hierarchies()
            }
            return {hierarchy: paths for hierarchy, paths in dirs.items() if paths}

        sb.cgroup_dirs = record(self._cgroups.missing(target) if target != "/" else {})
        self._save(sb)
        sb.cgroup_dirs = record(self._cgroups.create(target) if target != "/" else {})
        self._save(sb)

    def _pycrio_cgroup_dirs(self, except_id: str) -> dict[str, set[str]]:
        """Per hierarchy, the cgroup directories the daemon's other pods hold (or are making) as their own."""
        with self._lock:
            records = [sb.cgroup_dirs for sid, sb in self._sandboxes.items() if sid != except_id]
        owned: dict[str, set[str]] = {}
        for record in records:
            for hierarchy, dirs in record.items():
                owned.setdefault(hierarchy, set()).update(dirs)
        return owned

    # ---- UpdatePodSandboxResources ------------------------------------------------------------------

    def update_resources(self, sandbox_id: str, overhead: Resources, resources: Resources) -> None:
        """Record the pod's new overhead and resources and, where pycrio made the pod's cgroup, set its
        limits (a cgroupfs directory's files, or a systemd slice's unit properties). Where the pod has no
        cgroup of its own (the kubelet's, which it has already resized, the daemon's shared default parent)
        they are only recorded, as cri-o and containerd do. All or nothing: when the cgroup refuses a value,
        the old record and limits stay."""
        # Refuse bad input before anything changes.
        limits = pod_cgroup_limits(overhead, resources, self._hugepage_sizes)
        sb, lock = self._lookup_for_change(sandbox_id)
        if sb is None:
            raise NotFound(f"pod sandbox {sandbox_id!r} not found")
        with lifecycle_change(self._nri), lock:
            if self._sandboxes.get(sb.id) is not sb:
                raise NotFound(f"pod sandbox {sandbox_id!r} not found")
            if self._nri is not None:  # a plugin's error refuses the update before anything changes
                self._nri.update_pod_sandbox(
                    self.nri_pod(sb), nri_resources(overhead), nri_resources(resources)
                )
            self._resize(sb, overhead, resources, limits)
            if self._nri is not None:
                self._nri.post_update_pod_sandbox(self.nri_pod(sb))

    def _resize(
        self, sb: PodSandbox, overhead: Resources, resources: Resources, limits: CgroupLimits
    ) -> None:
        before = sb.config
        sb.config = replace(before, overhead=overhead, resources=resources)
        self._save(sb)
        if not self.owns_pod_cgroup(sb) or limits.empty:
            return
        try:
            self._cgroups.set_limits(sb.cgroup_parent, limits)
        except BaseException:
            sb.config = before
            self._save(sb)
            raise
        _log.info("pod cgroup resized", id=sb.id, cgroup=sb.cgroup_parent, limits=str(limits))

    @staticmethod
    def owns_pod_cgroup(sb: PodSandbox) -> bool:
        """Whether the pod's cgroup (the parent of its infra and container cgroups) is pycrio's own: in its
        record in every hierarchy. One that existed in any hierarchy before (the kubelet's pod cgroup) is not,
        even where pycrio then made it in a hierarchy the kubelet does not use."""
        return (
            bool(sb.config.cgroup_parent)
            and bool(sb.cgroup_dirs)
            and all(sb.cgroup_parent in dirs for dirs in sb.cgroup_dirs.values())
        )

    # ---- PodSandboxStatus / ListPodSandbox -----------------------------------------------------------

    def status(self, sandbox_id: str) -> PodSandbox:
        """A copy of the sandbox with its current state (NOTREADY once its infra process is gone)."""
        sb = self._resolve(sandbox_id)
        if sb is None:
            raise NotFound(f"pod sandbox {sandbox_id!r} not found")
        return self._observed(sb)

    def list(self, query: SandboxFilter | None = None) -> list[PodSandbox]:
        query = query or SandboxFilter()
        if query.id:
            try:
                one = self._resolve(query.id)
            except InvalidArgument:
                one = None  # an ambiguous prefix lists nothing, as cri-o's id index answers
            candidates = [one] if one is not None else []
        else:
            with self._lock:
                candidates = [sb for sb in self._sandboxes.values() if sb.state != SandboxState.CREATING]
        result = []
        for sb in candidates:
            observed = self._observed(sb)
            if query.state is not None and observed.state != query.state:
                continue
            if any(observed.config.labels.get(k) != v for k, v in query.labels.items()):
                continue
            result.append(observed)
        return sorted(result, key=lambda s: s.created_at)

    def list_version(self) -> int:
        """Look at every READY pod's infra process, then a number that differs whenever list() could answer
        differently than when it last had this number."""
        watched = self._watched
        generation = self._generation.value
        if watched is None or watched[0] != generation:
            # Gathered after reading the generation: a change made meanwhile bumps it, and the next call
            # gathers again.
            with self._lock:
                gone = self._infra_gone
                ready = {
                    sb.infra: sb
                    for sb in self._sandboxes.values()
                    if sb.state == SandboxState.READY and sb.infra is not None and sb.id not in gone
                }
            watched = self._watched = (generation, ready, list(ready))
        _, ready, processes = watched
        for process in self._infra.exited(processes) if processes else ():
            self._infra_died(ready[process])
        return self._generation.value

    def get(self, sandbox_id: str) -> PodSandbox:
        """For the containers service: the sandbox (full id or unambiguous prefix), NotFound otherwise."""
        return self.status(sandbox_id)

    def _observed(self, sb: PodSandbox) -> PodSandbox:
        copy = sb.copy()
        if copy.state == SandboxState.READY and copy.infra is not None and not self._infra_alive(sb):
            copy.state = SandboxState.NOTREADY
        return copy

    def _infra_alive(self, sb: PodSandbox) -> bool:
        """Whether the pod's infra process runs; its death, the first time it is seen, is a change lists show
        (the pod becomes NOTREADY)."""
        if sb.id in self._infra_gone:
            return False
        if sb.infra is None or self._infra.alive(sb.infra):
            return True
        self._infra_died(sb)
        return False

    def _infra_died(self, sb: PodSandbox) -> None:
        """The first sighting of a READY pod's infra death: lists change, and the pod's infra container is
        reported STOPPED (as containerd does), because an evented kubelet relists only every few minutes."""
        with self._lock:
            first = sb.id not in self._infra_gone and sb.id in self._sandboxes
            self._infra_gone.add(sb.id)
        if first:
            self._generation.bump()
            self._events.publish(sb.id, sb.id, ContainerEventType.STOPPED)

    def _resolve(self, sandbox_id: str) -> PodSandbox | None:
        """The sandbox with this id or unambiguous id prefix (like cri-o's id index); creating ones hidden.
        A prefix of several is the caller's mistake (InvalidArgument), as for containers."""
        if not sandbox_id:
            return None
        with self._lock:
            exact = self._sandboxes.get(sandbox_id)
            if exact is not None:
                return exact if exact.state != SandboxState.CREATING else None
            matches = [
                sb
                for sid, sb in self._sandboxes.items()
                if sid.startswith(sandbox_id) and sb.state != SandboxState.CREATING
            ]
        if len(matches) > 1:
            raise InvalidArgument(f"pod_sandbox_id: prefix {sandbox_id!r} matches several pod sandboxes")
        return matches[0] if matches else None

    def _lookup_for_change(self, sandbox_id: str) -> tuple[PodSandbox | None, threading.Lock]:
        if not sandbox_id:
            raise InvalidArgument("pod_sandbox_id is required")
        sb = self._resolve(sandbox_id)
        if sb is None:
            return None, threading.Lock()
        with self._lock:
            return sb, self._object_locks[sb.id]

    # ---- persistence ---------------------------------------------------------------------------------

    def _network_request(self, sb: PodSandbox) -> PodNetworkRequest:
        meta = sb.config.metadata
        return PodNetworkRequest(
            sandbox_id=sb.id,
            netns_path=sb.namespaces.network,
            pod_name=meta.name,
            pod_namespace=meta.namespace,
            pod_uid=meta.uid,
            port_mappings=list(sb.config.port_mappings),
            dns=sb.config.dns,
            bandwidth=bandwidth_limits(sb.config.annotations),
        )

    def _save(self, sb: PodSandbox) -> None:
        # Every change is saved: the change is made, so lists rebuild (even if the write fails).
        self._generation.bump()
        self._store.put(STATE_KIND, sb.id, sb.to_document())

    def _forget(self, sb: PodSandbox) -> None:
        self._store.delete(STATE_KIND, sb.id)
        with self._lock:
            self._sandboxes.pop(sb.id, None)
            self._object_locks.pop(sb.id, None)
            self._infra_gone.discard(sb.id)
        self._generation.bump()
        self._names.release(sb.name, sb.id)

    def _restore(self) -> None:
        """Load every sandbox; one cut short by a crash while being created is rolled back."""
        release_networks = True  # until a DEL of an earlier boot's pod fails: see _settle_after_reboot
        for sandbox_id, doc in self._store.list(STATE_KIND).items():
            try:
                sb = PodSandbox.from_document(doc)
            except (KeyError, TypeError, ValueError) as err:
                _log.error("unreadable sandbox record left as it is", id=sandbox_id, error=str(err))
                continue
            if doc.get("cgroups_created") and "cgroup_dirs" not in doc:
                # A record from before per-hierarchy ownership: only the infra cgroup is surely pycrio's.
                sb.cgroup_dirs = {h: [sb.cgroup_path] for h in self._cgroups.hierarchies()}
            self._sandboxes[sb.id] = sb
            self._names.restored(sb.name, sb.id, "", Handover.NEVER)
            self._object_locks[sb.id] = threading.Lock()
            earlier_boot = from_earlier_boot(sb.boot_id, self._settings.boot_id)
            if earlier_boot:
                sb.infra = None  # its pid may name another process of this boot: never signalled
            if sb.state == SandboxState.CREATING:
                self._roll_back(sb)
                continue
            if earlier_boot:
                release_networks = self._settle_after_reboot(sb, release_networks)
            else:
                _log.info("restored pod sandbox", id=sb.id, name=sb.name, state=sb.state.value)
            self._events.known(sb.id, _EVENTS_BEFORE[sb.state])

    def _settle_after_reboot(self, sb: PodSandbox, release_network: bool) -> bool:
        """A pod made in an earlier boot: its infra process, namespaces and mounts went with that boot. It is
        NOTREADY at once, and its addresses are released now (one CNI DEL, without the namespace), so that
        the kubelet's new pods find them free. A DEL that fails is left to StopPodSandbox, and so are the
        DELs of the pods after it (False): a network plugin that is not ready yet must not hold the start
        for a deadline per pod. The rest (records, cgroups the pod had, log dirs) goes with
        RemovePodSandbox, as the kubelet asks."""
        sb.state = SandboxState.NOTREADY
        sb.boot_id = self._settings.boot_id
        self._save(sb)
        _log.info("pod sandbox of an earlier boot is not ready", id=sb.id, name=sb.name)
        if release_network:
            self._teardown_network(sb, give_up_quietly=False, retry=False)
        return release_network and sb.network_phase not in (NetworkPhase.ADDING, NetworkPhase.ATTACHED)
