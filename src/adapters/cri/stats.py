"""ContainerStats, ListContainerStats, StreamContainerStats, PodSandboxStats, ListPodSandboxStats and
StreamPodSandboxStats: the stats service's cached records turned into CRI messages."""

from collections.abc import Iterator, Sequence
from typing import TypeVar

import grpc

from adapters.cri.generated import api_pb2 as pb
from domain import stats as domain
from domain.errors import InvalidArgument
from ports.cgroup_stats import Pressure, PressureLine
from ports.net_stats import InterfaceCounters

# Items per message of the Stream* variants (KEP-5825): each item goes out once, then the stream ends.
STREAM_CHUNK = 100
_T = TypeVar("_T")


class StatsHandlers:
    def __init__(self, service: domain.StatsService) -> None:
        self._service = service

    def ContainerStats(
        self, request: pb.ContainerStatsRequest, context: grpc.ServicerContext
    ) -> pb.ContainerStatsResponse:
        if not request.container_id:
            raise InvalidArgument("container_id is empty")
        return pb.ContainerStatsResponse(
            stats=container_stats(self._service.container_stats(request.container_id))
        )

    def ListContainerStats(
        self, request: pb.ListContainerStatsRequest, context: grpc.ServicerContext
    ) -> pb.ListContainerStatsResponse:
        found = self._service.list_container_stats(_container_filter(request.filter))
        return pb.ListContainerStatsResponse(stats=[container_stats(s) for s in found])

    def StreamContainerStats(
        self, request: pb.StreamContainerStatsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StreamContainerStatsResponse]:
        found = self._service.list_container_stats(_container_filter(request.filter))
        for chunk in chunks([container_stats(s) for s in found]):
            yield pb.StreamContainerStatsResponse(container_stats=chunk)

    def PodSandboxStats(
        self, request: pb.PodSandboxStatsRequest, context: grpc.ServicerContext
    ) -> pb.PodSandboxStatsResponse:
        if not request.pod_sandbox_id:
            raise InvalidArgument("pod_sandbox_id is empty")
        return pb.PodSandboxStatsResponse(stats=pod_stats(self._service.pod_stats(request.pod_sandbox_id)))

    def ListPodSandboxStats(
        self, request: pb.ListPodSandboxStatsRequest, context: grpc.ServicerContext
    ) -> pb.ListPodSandboxStatsResponse:
        found = self._service.list_pod_stats(_pod_filter(request.filter))
        return pb.ListPodSandboxStatsResponse(stats=[pod_stats(s) for s in found])

    def StreamPodSandboxStats(
        self, request: pb.StreamPodSandboxStatsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StreamPodSandboxStatsResponse]:
        found = self._service.list_pod_stats(_pod_filter(request.filter))
        for chunk in chunks([pod_stats(s) for s in found]):
            yield pb.StreamPodSandboxStatsResponse(pod_sandbox_stats=chunk)


def chunks(items: Sequence[_T], size: int = STREAM_CHUNK) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _container_filter(selector: pb.ContainerStatsFilter) -> domain.ContainerStatsFilter:
    return domain.ContainerStatsFilter(
        id=selector.id, pod_id=selector.pod_sandbox_id, labels=dict(selector.label_selector)
    )


def _pod_filter(selector: pb.PodSandboxStatsFilter) -> domain.PodStatsFilter:
    return domain.PodStatsFilter(id=selector.id, labels=dict(selector.label_selector))


def _u64(value: int) -> pb.UInt64Value:
    return pb.UInt64Value(value=value)


def psi_stats(pressure: Pressure) -> pb.PsiStats:
    """PSI as the kubelet reads it: averages in percent, totals in nanoseconds."""

    def data(line: PressureLine) -> pb.PsiData:
        return pb.PsiData(Total=line.total_ns, Avg10=line.avg10, Avg60=line.avg60, Avg300=line.avg300)

    message = pb.PsiStats(Some=data(pressure.some))
    if pressure.full is not None:
        message.Full.CopyFrom(data(pressure.full))
    return message


def cpu_usage(cpu: domain.CpuUsage) -> pb.CpuUsage:
    message = pb.CpuUsage(timestamp=cpu.timestamp_ns, usage_core_nano_seconds=_u64(cpu.usage_core_ns))
    if cpu.usage_nano_cores is not None:
        message.usage_nano_cores.value = cpu.usage_nano_cores
    if cpu.psi is not None:
        message.psi.CopyFrom(psi_stats(cpu.psi))
    return message


def io_usage(io: domain.IoUsage) -> pb.IoUsage:
    message = pb.IoUsage(timestamp=io.timestamp_ns)
    if io.psi is not None:
        message.psi.CopyFrom(psi_stats(io.psi))
    return message


def memory_usage(memory: domain.MemoryUsage) -> pb.MemoryUsage:
    message = pb.MemoryUsage(
        timestamp=memory.timestamp_ns,
        working_set_bytes=_u64(memory.working_set_bytes),
        usage_bytes=_u64(memory.usage_bytes),
        rss_bytes=_u64(memory.rss_bytes),
        page_faults=_u64(memory.page_faults),
        major_page_faults=_u64(memory.major_page_faults),
    )
    if memory.available_bytes is not None:
        message.available_bytes.value = memory.available_bytes
    if memory.psi is not None:
        message.psi.CopyFrom(psi_stats(memory.psi))
    return message


def container_stats(stats: domain.ContainerStats) -> pb.ContainerStats:
    container = stats.container
    message = pb.ContainerStats(
        attributes=pb.ContainerAttributes(
            id=container.id,
            metadata=pb.ContainerMetadata(name=container.name, attempt=container.attempt),
            labels=dict(container.labels),
            annotations=dict(container.annotations),
        )
    )
    if stats.cpu is not None:
        message.cpu.CopyFrom(cpu_usage(stats.cpu))
    if stats.memory is not None:
        message.memory.CopyFrom(memory_usage(stats.memory))
    if stats.io is not None:
        message.io.CopyFrom(io_usage(stats.io))
    if stats.swap is not None:
        message.swap.CopyFrom(
            pb.SwapUsage(timestamp=stats.swap.timestamp_ns, swap_usage_bytes=_u64(stats.swap.usage_bytes))
        )
        if stats.swap.available_bytes is not None:
            message.swap.swap_available_bytes.value = stats.swap.available_bytes
    if stats.writable_layer is not None:
        layer = stats.writable_layer
        message.writable_layer.CopyFrom(
            pb.FilesystemUsage(
                timestamp=layer.timestamp_ns,
                fs_id=pb.FilesystemIdentifier(mountpoint=layer.mountpoint),
                used_bytes=_u64(layer.used_bytes),
                inodes_used=_u64(layer.inodes_used),
            )
        )
    return message


def _interface(counters: InterfaceCounters) -> pb.NetworkInterfaceUsage:
    return pb.NetworkInterfaceUsage(
        name=counters.name,
        rx_bytes=_u64(counters.rx_bytes),
        rx_errors=_u64(counters.rx_errors),
        tx_bytes=_u64(counters.tx_bytes),
        tx_errors=_u64(counters.tx_errors),
    )


def pod_stats(stats: domain.PodStats) -> pb.PodSandboxStats:
    pod = stats.pod
    linux = pb.LinuxPodSandboxStats(containers=[container_stats(c) for c in stats.containers])
    if stats.cpu is not None:
        linux.cpu.CopyFrom(cpu_usage(stats.cpu))
    if stats.memory is not None:
        linux.memory.CopyFrom(memory_usage(stats.memory))
    if stats.io is not None:
        linux.io.CopyFrom(io_usage(stats.io))
    if stats.network is not None:
        linux.network.CopyFrom(
            pb.NetworkUsage(
                timestamp=stats.network.timestamp_ns,
                interfaces=[_interface(i) for i in stats.network.interfaces],
            )
        )
        if stats.network.default_interface is not None:
            linux.network.default_interface.CopyFrom(_interface(stats.network.default_interface))
    if stats.process is not None:
        linux.process.CopyFrom(
            pb.ProcessUsage(
                timestamp=stats.process.timestamp_ns, process_count=_u64(stats.process.process_count)
            )
        )
    return pb.PodSandboxStats(
        attributes=pb.PodSandboxAttributes(
            id=pod.id,
            metadata=pb.PodSandboxMetadata(
                name=pod.name, uid=pod.uid, namespace=pod.namespace, attempt=pod.attempt
            ),
            labels=dict(pod.labels),
            annotations=dict(pod.annotations),
        ),
        linux=linux,
    )
