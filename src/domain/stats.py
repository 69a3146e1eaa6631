"""Container and pod stats: sampled from cgroups, netns counters and writable layers, kept in a cache.

Sampled when asked, never in the background: an idle node pays nothing for stats nobody reads. A sample
is reused for `period` seconds, so a burst of calls (the kubelet asks for pod and container stats in the
same round, `crictl stats` lists and then asks per pod) reads each cgroup once; with `period` 0 every call
samples afresh. `usage_nano_cores` is the CPU rate since the previous sample of the same cgroup. Walking a
writable layer costs most of all, so it is refreshed at most every `disk_usage_period`.
"""

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from domain.errors import NotFound
from ports.cgroup_stats import CgroupSample, CgroupStatsReader, Pressure
from ports.clock import Clock
from ports.disk_usage import DiskUsage, DiskUsageReader, FilesystemCapacity
from ports.net_stats import InterfaceCounters, NetworkStatsReader
from ports.process_stats import ProcessCounts, ProcessStatsReader
from ports.workloads import ContainerInfo, PodInfo, WorkloadInventory

DEFAULT_INTERFACE = "eth0"


@dataclass(frozen=True)
class CpuUsage:
    timestamp_ns: int
    usage_core_ns: int
    # None until there are two samples to take a rate from.
    usage_nano_cores: int | None
    psi: Pressure | None = None
    # When it was read, on the monotonic clock (seconds): rates are taken over this, never over the wall
    # clock, which an NTP step or an operator may move by hours between two samples.
    sampled_at: float = 0.0


@dataclass(frozen=True)
class MemoryUsage:
    timestamp_ns: int
    working_set_bytes: int
    available_bytes: int | None
    usage_bytes: int
    rss_bytes: int
    page_faults: int
    major_page_faults: int
    psi: Pressure | None = None


@dataclass(frozen=True)
class IoUsage:
    timestamp_ns: int
    psi: Pressure | None = None


@dataclass(frozen=True)
class SwapUsage:
    timestamp_ns: int
    usage_bytes: int
    available_bytes: int | None


@dataclass(frozen=True)
class FilesystemUsage:
    timestamp_ns: int
    mountpoint: str
    used_bytes: int
    inodes_used: int
    # Of the filesystem holding the layer; None when it could not be read.
    capacity: FilesystemCapacity | None = None


@dataclass(frozen=True)
class NetworkUsage:
    timestamp_ns: int
    default_interface: InterfaceCounters | None
    interfaces: tuple[InterfaceCounters, ...]


@dataclass(frozen=True)
class ProcessUsage:
    timestamp_ns: int
    process_count: int


@dataclass(frozen=True)
class ContainerStats:
    container: ContainerInfo
    timestamp_ns: int
    cpu: CpuUsage | None = None
    memory: MemoryUsage | None = None
    swap: SwapUsage | None = None
    writable_layer: FilesystemUsage | None = None
    # The raw reading, for the cAdvisor-style metrics.
    cgroup: CgroupSample | None = None
    processes: ProcessCounts | None = None
    io: IoUsage | None = None


@dataclass(frozen=True)
class PodStats:
    pod: PodInfo
    timestamp_ns: int
    cpu: CpuUsage | None = None
    memory: MemoryUsage | None = None
    network: NetworkUsage | None = None
    process: ProcessUsage | None = None
    containers: tuple[ContainerStats, ...] = ()
    cgroup: CgroupSample | None = None
    io: IoUsage | None = None


@dataclass(frozen=True)
class ContainerStatsFilter:
    id: str = ""
    pod_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodStatsFilter:
    id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def labels_match(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def nano_cores(previous: CpuUsage | None, usage_core_ns: int, sampled_at: float) -> int | None:
    """CPU rate in nanocores (1e9 = one core busy) since `previous`; None without a usable previous.
    `sampled_at` is monotonic seconds, as `previous.sampled_at`."""
    if previous is None:
        return None
    elapsed_ns = round((sampled_at - previous.sampled_at) * 1_000_000_000)
    if elapsed_ns <= 0:
        return previous.usage_nano_cores
    used = usage_core_ns - previous.usage_core_ns
    if used < 0:  # the cgroup was recreated: counters restarted
        return None
    return used * 1_000_000_000 // elapsed_ns


def memory_usage(sample: CgroupSample, timestamp_ns: int) -> MemoryUsage:
    return MemoryUsage(
        timestamp_ns=timestamp_ns,
        working_set_bytes=sample.memory_working_set_bytes,
        available_bytes=sample.memory_available_bytes,
        usage_bytes=sample.memory_usage_bytes,
        rss_bytes=sample.memory_rss_bytes,
        page_faults=sample.page_faults,
        major_page_faults=sample.major_page_faults,
        psi=sample.memory_pressure,
    )


def io_usage(sample: CgroupSample, timestamp_ns: int) -> IoUsage | None:
    """Only PSI so far (the CRI's IoUsage holds nothing else); None where the node has no PSI."""
    return IoUsage(timestamp_ns, sample.io_pressure) if sample.io_pressure is not None else None


def network_usage(interfaces: Iterable[InterfaceCounters], timestamp_ns: int) -> NetworkUsage:
    """Loopback is not pod traffic; `eth0` (the CNI's interface) is the default, as the kubelet expects."""
    real = tuple(i for i in interfaces if i.name != "lo")
    default = next((i for i in real if i.name == DEFAULT_INTERFACE), real[0] if real else None)
    return NetworkUsage(timestamp_ns, default, real)


def sum_samples(samples: list[CgroupSample]) -> CgroupSample | None:
    """A pod without its own cgroup: add up its containers (limits are unknown)."""
    if not samples:
        return None
    total: dict[str, object] = {}
    unknown = ("pids_limit", "memory_max_usage_bytes", "cpu_shares", "cpu_quota_us", "cpu_period_us")
    for name in CgroupSample.__dataclass_fields__:
        values = [getattr(s, name) for s in samples]
        if name == "procs":
            total[name] = tuple(pid for s in samples for pid in s.procs)
        elif name == "io_devices":
            total[name] = ()  # per-device figures do not add up across cgroups sharing a device
        elif name.endswith("_limit_bytes") or name in unknown or all(v is None for v in values):
            total[name] = None
        else:
            total[name] = sum(v or 0 for v in values)
    return CgroupSample(**total)  # type: ignore[arg-type]


@dataclass
class _LayerUsage:
    checked_at: float
    usage: DiskUsage | None
    capacity: FilesystemCapacity | None


@dataclass(eq=False)
class StatsService:
    inventory: WorkloadInventory
    cgroups: CgroupStatsReader
    network: NetworkStatsReader
    disk: DiskUsageReader
    processes: ProcessStatsReader
    clock: Clock
    period: float
    disk_usage_period: float
    on_error: Callable[[str, Exception], None] = lambda what, err: None
    # The cache (each entry with the monotonic time it was sampled), and the previous CPU readings the
    # rates are taken from.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _containers: dict[str, tuple[float, ContainerStats]] = field(default_factory=dict, init=False, repr=False)
    _pods: dict[str, tuple[float, PodStats]] = field(default_factory=dict, init=False, repr=False)
    _cpu_history: dict[str, CpuUsage] = field(default_factory=dict, init=False, repr=False)
    _layers: dict[str, _LayerUsage] = field(default_factory=dict, init=False, repr=False)

    # Sampling ---------------------------------------------------------------------------------------

    def _forget_gone(self, containers: Iterable[ContainerInfo], pods: Iterable[PodInfo]) -> None:
        """Drop cached samples, rates and layer sizes of containers and pods that are no longer there."""
        present = {c.id for c in containers}
        pod_ids = {p.id for p in pods}
        live = {f"c/{cid}" for cid in present} | {f"p/{pid}" for pid in pod_ids}
        with self._lock:
            for key in [k for k in self._containers if k not in present]:
                del self._containers[key]
            for key in [k for k in self._pods if k not in pod_ids]:
                del self._pods[key]
            for key in [k for k in self._cpu_history if k not in live]:
                del self._cpu_history[key]
            for key in [k for k in self._layers if k not in present]:
                del self._layers[key]

    def _fresh(self, sampled_at: float) -> bool:
        return self.clock.monotonic() - sampled_at < self.period

    def _sample_container(self, container: ContainerInfo) -> ContainerStats:
        now = self.clock.now_ns()
        try:
            sample = self.cgroups.read(container.cgroup) if container.cgroup else None
        except NotFound:
            sample = None
        except Exception as err:
            self.on_error(f"container {container.id} cgroup", err)
            sample = None
        layer = self._writable_layer(container, now)
        if sample is None:
            return ContainerStats(container, now, writable_layer=layer)
        swap = None
        if sample.swap_usage_bytes is not None:
            swap = SwapUsage(now, sample.swap_usage_bytes, sample.swap_available_bytes)
        return ContainerStats(
            container=container,
            timestamp_ns=now,
            cpu=self._cpu(f"c/{container.id}", sample, now),
            memory=memory_usage(sample, now),
            swap=swap,
            io=io_usage(sample, now),
            writable_layer=layer,
            cgroup=sample,
            processes=self._process_counts(container.id, sample),
        )

    def _process_counts(self, container_id: str, sample: CgroupSample) -> ProcessCounts | None:
        try:
            return self.processes.read(sample.procs)
        except Exception as err:
            self.on_error(f"container {container_id} processes", err)
            return None

    def _sample_pod(self, pod: PodInfo, containers: list[ContainerStats]) -> PodStats:
        now = self.clock.now_ns()
        sample: CgroupSample | None = None
        if pod.cgroup_parent:
            try:
                sample = self.cgroups.read(pod.cgroup_parent)
            except NotFound:
                sample = None
            except Exception as err:
                self.on_error(f"pod {pod.id} cgroup", err)
        if sample is None:
            sample = sum_samples([c.cgroup for c in containers if c.cgroup is not None])
        network = None
        if pod.netns_path is not None:
            try:
                network = network_usage(self.network.read(pod.netns_path), now)
            except NotFound:
                network = None
            except Exception as err:
                self.on_error(f"pod {pod.id} network", err)
        if sample is None:
            return PodStats(pod, now, network=network, containers=tuple(containers))
        process = ProcessUsage(now, sample.pids_current) if sample.pids_current is not None else None
        return PodStats(
            pod=pod,
            timestamp_ns=now,
            cpu=self._cpu(f"p/{pod.id}", sample, now),
            memory=memory_usage(sample, now),
            io=io_usage(sample, now),
            network=network,
            process=process,
            containers=tuple(containers),
            cgroup=sample,
        )

    def _cpu(self, key: str, sample: CgroupSample, now: int) -> CpuUsage:
        usage_core_ns = sample.cpu_usage_ns
        with self._lock:
            previous = self._cpu_history.get(key)
            sampled_at = self.clock.monotonic()
            rate = nano_cores(previous, usage_core_ns, sampled_at)
            usage = CpuUsage(now, usage_core_ns, rate, sample.cpu_pressure, sampled_at)
            self._cpu_history[key] = usage
        return usage

    def _writable_layer(self, container: ContainerInfo, now: int) -> FilesystemUsage | None:
        if not container.upper_dir:
            return None
        age_now = self.clock.monotonic()
        with self._lock:
            known = self._layers.get(container.id)
        if known is None or age_now - known.checked_at >= self.disk_usage_period:
            usage: DiskUsage | None = None
            capacity: FilesystemCapacity | None = None
            try:
                usage = self.disk.usage(container.upper_dir)
                capacity = self.disk.capacity(container.upper_dir)
            except NotFound:
                pass
            except Exception as err:
                self.on_error(f"container {container.id} writable layer", err)
            known = _LayerUsage(age_now, usage, capacity)
            with self._lock:
                self._layers[container.id] = known
        if known.usage is None:
            return None
        return FilesystemUsage(
            now, container.upper_dir, known.usage.used_bytes, known.usage.inodes_used, known.capacity
        )

    # Queries ----------------------------------------------------------------------------------------

    def container_stats(self, container_id: str) -> ContainerStats:
        container = next((c for c in self.inventory.containers() if c.id == container_id), None)
        if container is None:
            raise NotFound(f"container {container_id} not found")
        return self._container_view(container)

    def list_container_stats(self, selector: ContainerStatsFilter) -> list[ContainerStats]:
        containers = self.inventory.containers()
        self._forget_gone(containers, self.inventory.pods())
        found = []
        for container in containers:
            if not (container.running and _container_matches(container, selector)):
                continue
            stats = self._container_view(container)
            if stats.cpu is not None or stats.memory is not None:
                found.append(stats)
        return found

    def pod_stats(self, pod_id: str) -> PodStats:
        pod = next((p for p in self.inventory.pods() if p.id == pod_id), None)
        if pod is None:
            raise NotFound(f"pod sandbox {pod_id} not found")
        return self._pod_view(pod)

    def list_pod_stats(self, selector: PodStatsFilter) -> list[PodStats]:
        pods = self.inventory.pods()
        self._forget_gone(self.inventory.containers(), pods)
        return [
            self._pod_view(pod)
            for pod in pods
            if pod.ready and pod.id.startswith(selector.id) and labels_match(pod.labels, selector.labels)
        ]

    def _container_view(self, container: ContainerInfo) -> ContainerStats:
        if not container.running:
            return ContainerStats(container, self.clock.now_ns())
        if self.period > 0:
            with self._lock:
                entry = self._containers.get(container.id)
            if entry is not None and self._fresh(entry[0]):
                cached = entry[1]
                return cached if cached.container == container else replace(cached, container=container)
        sampled_at = self.clock.monotonic()
        stats = self._sample_container(container)
        if self.period > 0 and stats.cgroup is not None:
            with self._lock:
                self._containers[container.id] = (sampled_at, stats)
        return stats

    def _pod_view(self, pod: PodInfo) -> PodStats:
        running = [c for c in self.inventory.containers() if c.pod_id == pod.id and c.running]
        if self.period > 0:
            with self._lock:
                entry = self._pods.get(pod.id)
            # A pod sampled before a container of it started (or after one stopped) is sampled again.
            if (
                entry is not None
                and self._fresh(entry[0])
                and {c.container.id for c in entry[1].containers} == {c.id for c in running}
            ):
                return entry[1]
        sampled_at = self.clock.monotonic()
        containers = [self._container_view(c) for c in running]
        stats = self._sample_pod(pod, [c for c in containers if c.cpu is not None or c.memory is not None])
        if self.period > 0:
            with self._lock:
                self._pods[pod.id] = (sampled_at, stats)
        return stats


def _container_matches(container: ContainerInfo, selector: ContainerStatsFilter) -> bool:
    return (
        container.id.startswith(selector.id)
        and container.pod_id.startswith(selector.pod_id)
        and labels_match(container.labels, selector.labels)
    )
