"""The cAdvisor-style metrics of ListPodSandboxMetrics, with the descriptors ListMetricDescriptors announces.

Names, help texts and label keys follow cAdvisor (and cri-o), because the kubelet re-exports these on its
/metrics/cadvisor endpoint where dashboards expect them, and cri-tools checks the set. The set is fixed at
start-up: the kubelet drops any metric whose name it did not see in the descriptors. Values are unsigned
integers on the wire, so second counters are whole seconds (as in cri-o); a figure the node cannot tell
(no swap accounting, no memory.peak) reads 0, as in cAdvisor. Block devices are labelled `major:minor`.
Not provided: hugetlb, pressure (PSI), memory reservation and ulimit metrics.
"""

import enum
from collections.abc import Callable
from dataclasses import dataclass

from domain.stats import ContainerStats, FilesystemUsage, PodStats
from ports.cgroup_stats import CgroupSample, IoDevice
from ports.net_stats import InterfaceCounters

BASE_LABELS = ("id", "image", "namespace", "pod", "container")
_NS_PER_SECOND = 1_000_000_000


class MetricKind(enum.Enum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True)
class MetricDescriptor:
    name: str
    help: str
    label_keys: tuple[str, ...] = BASE_LABELS


@dataclass(frozen=True)
class MetricValue:
    name: str
    kind: MetricKind
    label_values: tuple[str, ...]
    value: int
    timestamp_ns: int


@dataclass(frozen=True)
class ContainerMetrics:
    container_id: str
    metrics: tuple[MetricValue, ...]


@dataclass(frozen=True)
class PodMetrics:
    pod_id: str
    metrics: tuple[MetricValue, ...]
    containers: tuple[ContainerMetrics, ...]


# (extra label values, value) pairs of one metric for one container.
Values = list[tuple[tuple[str, ...], int]]


@dataclass(frozen=True)
class _ContainerMetric:
    descriptor: MetricDescriptor
    kind: MetricKind
    # From a container's stats and its (present) cgroup sample.
    values: Callable[[ContainerStats, CgroupSample], Values]


C, G = MetricKind.COUNTER, MetricKind.GAUGE


Reader = Callable[[ContainerStats, CgroupSample], Values]


def _one(read: Callable[[ContainerStats, CgroupSample], int | None]) -> Reader:
    def values(stats: ContainerStats, sample: CgroupSample) -> Values:
        return [((), read(stats, sample) or 0)]

    return values


def _seconds(ns: int) -> int:
    return ns // _NS_PER_SECOND


def _failures(stats: ContainerStats, sample: CgroupSample) -> Values:
    return [
        (("pgfault", "container"), sample.page_faults),
        (("pgfault", "hierarchy"), sample.page_faults),
        (("pgmajfault", "container"), sample.major_page_faults),
        (("pgmajfault", "hierarchy"), sample.major_page_faults),
    ]


def _per_device(read: Callable[[IoDevice], int]) -> Reader:
    def values(stats: ContainerStats, sample: CgroupSample) -> Values:
        return [((f"{d.major}:{d.minor}",), read(d)) for d in sample.io_devices]

    return values


def _blkio(stats: ContainerStats, sample: CgroupSample) -> Values:
    found: Values = []
    for d in sample.io_devices:
        device = (f"{d.major}:{d.minor}", str(d.major), str(d.minor))
        found.append(((*device, "Read"), d.read_bytes))
        found.append(((*device, "Write"), d.write_bytes))
    return found


def _layer(read: Callable[[FilesystemUsage], int | None]) -> Reader:
    """Writable-layer figures exist only for containers that have one."""

    def values(stats: ContainerStats, sample: CgroupSample) -> Values:
        value = read(stats.writable_layer) if stats.writable_layer is not None else None
        return [] if value is None else [((), value)]

    return values


def _d(name: str, help_text: str, *extra_labels: str) -> MetricDescriptor:
    return MetricDescriptor(name, help_text, (*BASE_LABELS, *extra_labels))


LAST_SEEN = _d("container_last_seen", "Last time a container was seen by the exporter")

_CONTAINER_METRICS: tuple[_ContainerMetric, ...] = (
    # CPU
    _ContainerMetric(
        _d("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "cpu"),
        C,
        lambda s, g: [(("total",), _seconds(g.cpu_usage_ns))],
    ),
    _ContainerMetric(
        _d("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds."),
        C,
        _one(lambda s, g: _seconds(g.cpu_user_ns)),
    ),
    _ContainerMetric(
        _d("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds."),
        C,
        _one(lambda s, g: _seconds(g.cpu_system_ns)),
    ),
    _ContainerMetric(
        _d("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals."),
        C,
        _one(lambda s, g: g.cpu_periods),
    ),
    _ContainerMetric(
        _d("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals."),
        C,
        _one(lambda s, g: g.cpu_throttled_periods),
    ),
    _ContainerMetric(
        _d(
            "container_cpu_cfs_throttled_seconds_total",
            "Total time duration the container has been throttled.",
        ),
        C,
        _one(lambda s, g: _seconds(g.cpu_throttled_ns)),
    ),
    # Memory
    _ContainerMetric(
        _d("container_memory_cache", "Number of bytes of page cache memory."),
        G,
        _one(lambda s, g: g.memory_cache_bytes),
    ),
    _ContainerMetric(
        _d("container_memory_rss", "Size of RSS in bytes."),
        G,
        _one(lambda s, g: g.memory_rss_bytes),
    ),
    _ContainerMetric(
        _d("container_memory_kernel_usage", "Size of kernel memory allocated in bytes."),
        G,
        _one(lambda s, g: g.memory_kernel_bytes),
    ),
    _ContainerMetric(
        _d("container_memory_mapped_file", "Size of memory mapped files in bytes."),
        G,
        _one(lambda s, g: g.memory_mapped_file_bytes),
    ),
    _ContainerMetric(
        _d("container_memory_swap", "Container swap usage in bytes."),
        G,
        _one(lambda s, g: g.swap_usage_bytes),
    ),
    _ContainerMetric(
        _d("container_memory_failcnt", "Number of memory usage hits limits"),
        C,
        _one(lambda s, g: g.memory_failcnt),
    ),
    _ContainerMetric(
        _d(
            "container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
        ),
        G,
        _one(lambda s, g: g.memory_usage_bytes),
    ),
    _ContainerMetric(
        _d("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes"),
        G,
        _one(lambda s, g: g.memory_max_usage_bytes),
    ),
    _ContainerMetric(
        _d("container_memory_working_set_bytes", "Current working set in bytes."),
        G,
        _one(lambda s, g: g.memory_working_set_bytes),
    ),
    _ContainerMetric(
        _d(
            "container_memory_failures_total",
            "Cumulative count of memory allocation failures.",
            "failure_type",
            "scope",
        ),
        C,
        _failures,
    ),
    _ContainerMetric(
        _d("container_oom_events_total", "Count of out of memory events observed for the container"),
        C,
        _one(lambda s, g: g.oom_kills),
    ),
    # Spec
    _ContainerMetric(
        _d("container_spec_memory_limit_bytes", "Memory limit for the container."),
        G,
        _one(lambda s, g: g.memory_limit_bytes),
    ),
    _ContainerMetric(
        _d("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container."),
        G,
        _one(lambda s, g: g.swap_limit_bytes),
    ),
    _ContainerMetric(
        _d("container_spec_cpu_period", "CPU period of the container."),
        G,
        _one(lambda s, g: g.cpu_period_us),
    ),
    _ContainerMetric(
        _d("container_spec_cpu_quota", "CPU quota of the container."),
        G,
        lambda s, g: [] if g.cpu_quota_us is None else [((), g.cpu_quota_us)],
    ),
    _ContainerMetric(
        _d("container_spec_cpu_shares", "CPU share of the container."),
        G,
        _one(lambda s, g: g.cpu_shares),
    ),
    _ContainerMetric(
        _d("container_start_time_seconds", "Start time of the container since unix epoch in seconds."),
        G,
        _one(lambda s, g: _seconds(s.container.started_at_ns)),
    ),
    # Processes
    _ContainerMetric(
        _d("container_processes", "Number of processes running inside the container."),
        G,
        _one(lambda s, g: g.pids_current),
    ),
    _ContainerMetric(
        _d("container_threads", "Number of threads running inside the container"),
        G,
        _one(lambda s, g: s.processes.threads if s.processes else 0),
    ),
    _ContainerMetric(
        _d(
            "container_threads_max",
            "Maximum number of threads allowed inside the container, infinity if value is zero",
        ),
        G,
        _one(lambda s, g: g.pids_limit),
    ),
    _ContainerMetric(
        _d("container_file_descriptors", "Number of open file descriptors for the container."),
        G,
        _one(lambda s, g: s.processes.file_descriptors if s.processes else 0),
    ),
    _ContainerMetric(
        _d("container_sockets", "Number of open sockets for the container."),
        G,
        _one(lambda s, g: s.processes.sockets if s.processes else 0),
    ),
    # Writable layer
    _ContainerMetric(
        _d(
            "container_fs_usage_bytes",
            "Number of bytes that are consumed by the container on this filesystem.",
        ),
        G,
        _layer(lambda layer: layer.used_bytes),
    ),
    _ContainerMetric(
        _d(
            "container_fs_limit_bytes",
            "Number of bytes that can be consumed by the container on this filesystem.",
        ),
        G,
        _layer(lambda layer: layer.capacity.total_bytes if layer.capacity else None),
    ),
    _ContainerMetric(
        _d("container_fs_inodes_total", "Number of Inodes"),
        G,
        _layer(lambda layer: layer.capacity.inodes_total if layer.capacity else None),
    ),
    _ContainerMetric(
        _d("container_fs_inodes_free", "Number of available Inodes"),
        G,
        _layer(lambda layer: layer.capacity.inodes_free if layer.capacity else None),
    ),
    # Block I/O
    _ContainerMetric(
        _d("container_fs_reads_bytes_total", "Cumulative count of bytes read", "device"),
        C,
        _per_device(lambda d: d.read_bytes),
    ),
    _ContainerMetric(
        _d("container_fs_reads_total", "Cumulative count of reads completed", "device"),
        C,
        _per_device(lambda d: d.reads),
    ),
    _ContainerMetric(
        _d("container_fs_writes_bytes_total", "Cumulative count of bytes written", "device"),
        C,
        _per_device(lambda d: d.write_bytes),
    ),
    _ContainerMetric(
        _d("container_fs_writes_total", "Cumulative count of writes completed", "device"),
        C,
        _per_device(lambda d: d.writes),
    ),
    _ContainerMetric(
        _d(
            "container_blkio_device_usage_total",
            "Blkio Device bytes usage",
            "device",
            "major",
            "minor",
            "operation",
        ),
        C,
        _blkio,
    ),
)

_NETWORK_METRICS: tuple[tuple[MetricDescriptor, Callable[[InterfaceCounters], int]], ...] = (
    (
        _d("container_network_receive_bytes_total", "Cumulative count of bytes received", "interface"),
        lambda i: i.rx_bytes,
    ),
    (
        _d("container_network_receive_packets_total", "Cumulative count of packets received", "interface"),
        lambda i: i.rx_packets,
    ),
    (
        _d(
            "container_network_receive_packets_dropped_total",
            "Cumulative count of packets dropped while receiving",
            "interface",
        ),
        lambda i: i.rx_dropped,
    ),
    (
        _d(
            "container_network_receive_errors_total",
            "Cumulative count of errors encountered while receiving",
            "interface",
        ),
        lambda i: i.rx_errors,
    ),
    (
        _d("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", "interface"),
        lambda i: i.tx_bytes,
    ),
    (
        _d(
            "container_network_transmit_packets_total", "Cumulative count of packets transmitted", "interface"
        ),
        lambda i: i.tx_packets,
    ),
    (
        _d(
            "container_network_transmit_packets_dropped_total",
            "Cumulative count of packets dropped while transmitting",
            "interface",
        ),
        lambda i: i.tx_dropped,
    ),
    (
        _d(
            "container_network_transmit_errors_total",
            "Cumulative count of errors encountered while transmitting",
            "interface",
        ),
        lambda i: i.tx_errors,
    ),
)

DESCRIPTORS: tuple[MetricDescriptor, ...] = (
    LAST_SEEN,
    *(m.descriptor for m in _CONTAINER_METRICS),
    *(descriptor for descriptor, _ in _NETWORK_METRICS),
)


def pod_metrics(stats: PodStats, now_ns: int) -> PodMetrics:
    pod = stats.pod
    network: list[MetricValue] = []
    if stats.network is not None:
        base = (pod.id, "", pod.namespace, pod.name, "POD")
        for interface in stats.network.interfaces:
            for descriptor, read in _NETWORK_METRICS:
                network.append(
                    MetricValue(descriptor.name, C, (*base, interface.name), read(interface), now_ns)
                )
    return PodMetrics(
        pod_id=pod.id,
        metrics=tuple(network),
        containers=tuple(_container_metrics(c, pod.namespace, pod.name, now_ns) for c in stats.containers),
    )


def _container_metrics(stats: ContainerStats, namespace: str, pod_name: str, now_ns: int) -> ContainerMetrics:
    container = stats.container
    base = (container.id, container.image, namespace, pod_name, container.name)
    values = [MetricValue(LAST_SEEN.name, G, base, _seconds(now_ns), now_ns)]
    if stats.cgroup is not None:
        for metric in _CONTAINER_METRICS:
            for extra, value in metric.values(stats, stats.cgroup):
                values.append(
                    MetricValue(metric.descriptor.name, metric.kind, (*base, *extra), value, now_ns)
                )
    return ContainerMetrics(container.id, tuple(values))
