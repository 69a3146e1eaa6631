"""The cAdvisor-style metrics of ListPodSandboxMetrics, with the descriptors ListMetricDescriptors announces.

Names, help texts and label keys follow cAdvisor (and cri-o), because the kubelet re-exports these on its
/metrics/cadvisor endpoint where dashboards expect them. The set is fixed at start-up: the kubelet drops
any metric whose name it did not see in the descriptors. Values are unsigned integers on the wire, so
second counters are whole seconds (as in cri-o).
"""

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from domain.stats import ContainerStats, PodStats
from ports.cgroup_stats import CgroupSample
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


@dataclass(frozen=True)
class _ContainerMetric:
    descriptor: MetricDescriptor
    kind: MetricKind
    # (extra label values, value) pairs from one cgroup sample.
    values: Callable[[CgroupSample], Iterable[tuple[tuple[str, ...], int]]]


def _one(
    read: Callable[[CgroupSample], int | None],
) -> Callable[[CgroupSample], list[tuple[tuple[str, ...], int]]]:
    def values(sample: CgroupSample) -> list[tuple[tuple[str, ...], int]]:
        value = read(sample)
        return [] if value is None else [((), value)]

    return values


def _failures(sample: CgroupSample) -> list[tuple[tuple[str, ...], int]]:
    return [
        (("pgfault", "container"), sample.page_faults),
        (("pgfault", "hierarchy"), sample.page_faults),
        (("pgmajfault", "container"), sample.major_page_faults),
        (("pgmajfault", "hierarchy"), sample.major_page_faults),
    ]


C, G = MetricKind.COUNTER, MetricKind.GAUGE
LAST_SEEN = MetricDescriptor("container_last_seen", "Last time a container was seen by the exporter")
FS_USAGE = MetricDescriptor(
    "container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem."
)

_CONTAINER_METRICS = (
    _ContainerMetric(
        MetricDescriptor(
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed in seconds.",
            (*BASE_LABELS, "cpu"),
        ),
        C,
        lambda s: [(("total",), s.cpu_usage_ns // _NS_PER_SECOND)],
    ),
    _ContainerMetric(
        MetricDescriptor("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds."),
        C,
        _one(lambda s: s.cpu_user_ns // _NS_PER_SECOND),
    ),
    _ContainerMetric(
        MetricDescriptor(
            "container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds."
        ),
        C,
        _one(lambda s: s.cpu_system_ns // _NS_PER_SECOND),
    ),
    _ContainerMetric(
        MetricDescriptor(
            "container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals."
        ),
        C,
        _one(lambda s: s.cpu_periods),
    ),
    _ContainerMetric(
        MetricDescriptor(
            "container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals."
        ),
        C,
        _one(lambda s: s.cpu_throttled_periods),
    ),
    _ContainerMetric(
        MetricDescriptor(
            "container_cpu_cfs_throttled_seconds_total",
            "Total time duration the container has been throttled.",
        ),
        C,
        _one(lambda s: s.cpu_throttled_ns // _NS_PER_SECOND),
    ),
    _ContainerMetric(
        MetricDescriptor("container_memory_cache", "Number of bytes of page cache memory."),
        G,
        _one(lambda s: s.memory_cache_bytes),
    ),
    _ContainerMetric(
        MetricDescriptor("container_memory_rss", "Size of RSS in bytes."),
        G,
        _one(lambda s: s.memory_rss_bytes),
    ),
    _ContainerMetric(
        MetricDescriptor("container_memory_mapped_file", "Size of memory mapped files in bytes."),
        G,
        _one(lambda s: s.memory_mapped_file_bytes),
    ),
    _ContainerMetric(
        MetricDescriptor("container_memory_swap", "Container swap usage in bytes."),
        G,
        _one(lambda s: s.swap_usage_bytes),
    ),
    _ContainerMetric(
        MetricDescriptor("container_memory_failcnt", "Number of memory usage hits limits"),
        C,
        _one(lambda s: s.memory_failcnt),
    ),
    _ContainerMetric(
        MetricDescriptor(
            "container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
        ),
        G,
        _one(lambda s: s.memory_usage_bytes),
    ),
    _ContainerMetric(
        MetricDescriptor("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes"),
        G,
        _one(lambda s: s.memory_max_usage_bytes),
    ),
    _ContainerMetric(
        MetricDescriptor("container_memory_working_set_bytes", "Current working set in bytes."),
        G,
        _one(lambda s: s.memory_working_set_bytes),
    ),
    _ContainerMetric(
        MetricDescriptor(
            "container_memory_failures_total",
            "Cumulative count of memory allocation failures.",
            (*BASE_LABELS, "failure_type", "scope"),
        ),
        C,
        _failures,
    ),
    _ContainerMetric(
        MetricDescriptor("container_spec_memory_limit_bytes", "Memory limit for the container."),
        G,
        _one(lambda s: s.memory_limit_bytes or 0),
    ),
    _ContainerMetric(
        MetricDescriptor(
            "container_oom_events_total", "Count of out of memory events observed for the container"
        ),
        C,
        _one(lambda s: s.oom_kills),
    ),
    _ContainerMetric(
        MetricDescriptor("container_processes", "Number of processes running inside the container."),
        G,
        _one(lambda s: s.pids_current),
    ),
)

_NETWORK_LABELS = (*BASE_LABELS, "interface")
_NETWORK_METRICS: tuple[tuple[MetricDescriptor, Callable[[InterfaceCounters], int]], ...] = (
    (
        MetricDescriptor(
            "container_network_receive_bytes_total", "Cumulative count of bytes received", _NETWORK_LABELS
        ),
        lambda i: i.rx_bytes,
    ),
    (
        MetricDescriptor(
            "container_network_receive_packets_total", "Cumulative count of packets received", _NETWORK_LABELS
        ),
        lambda i: i.rx_packets,
    ),
    (
        MetricDescriptor(
            "container_network_receive_packets_dropped_total",
            "Cumulative count of packets dropped while receiving",
            _NETWORK_LABELS,
        ),
        lambda i: i.rx_dropped,
    ),
    (
        MetricDescriptor(
            "container_network_receive_errors_total",
            "Cumulative count of errors encountered while receiving",
            _NETWORK_LABELS,
        ),
        lambda i: i.rx_errors,
    ),
    (
        MetricDescriptor(
            "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", _NETWORK_LABELS
        ),
        lambda i: i.tx_bytes,
    ),
    (
        MetricDescriptor(
            "container_network_transmit_packets_total",
            "Cumulative count of packets transmitted",
            _NETWORK_LABELS,
        ),
        lambda i: i.tx_packets,
    ),
    (
        MetricDescriptor(
            "container_network_transmit_packets_dropped_total",
            "Cumulative count of packets dropped while transmitting",
            _NETWORK_LABELS,
        ),
        lambda i: i.tx_dropped,
    ),
    (
        MetricDescriptor(
            "container_network_transmit_errors_total",
            "Cumulative count of errors encountered while transmitting",
            _NETWORK_LABELS,
        ),
        lambda i: i.tx_errors,
    ),
)

DESCRIPTORS: tuple[MetricDescriptor, ...] = (
    LAST_SEEN,
    *(m.descriptor for m in _CONTAINER_METRICS),
    FS_USAGE,
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
    values = [MetricValue(LAST_SEEN.name, G, base, now_ns // _NS_PER_SECOND, now_ns)]
    if stats.cgroup is not None:
        for metric in _CONTAINER_METRICS:
            for extra, value in metric.values(stats.cgroup):
                values.append(
                    MetricValue(metric.descriptor.name, metric.kind, (*base, *extra), value, now_ns)
                )
    if stats.writable_layer is not None:
        values.append(MetricValue(FS_USAGE.name, G, base, stats.writable_layer.used_bytes, now_ns))
    return ContainerMetrics(container.id, tuple(values))
