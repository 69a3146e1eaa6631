"""ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics (cAdvisor-style metrics)."""

from collections.abc import Iterator

import grpc

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.stats import chunks
from domain import pod_metrics as domain
from domain.stats import PodStatsFilter, StatsService
from ports.clock import Clock

_KINDS = {domain.MetricKind.COUNTER: pb.COUNTER, domain.MetricKind.GAUGE: pb.GAUGE}


class PodMetricsHandlers:
    def __init__(self, service: StatsService, clock: Clock) -> None:
        self._service = service
        self._clock = clock
        self._descriptors = [
            pb.MetricDescriptor(name=d.name, help=d.help, label_keys=list(d.label_keys))
            for d in domain.DESCRIPTORS
        ]

    def ListMetricDescriptors(
        self, request: pb.ListMetricDescriptorsRequest, context: grpc.ServicerContext
    ) -> pb.ListMetricDescriptorsResponse:
        return pb.ListMetricDescriptorsResponse(descriptors=self._descriptors)

    def ListPodSandboxMetrics(
        self, request: pb.ListPodSandboxMetricsRequest, context: grpc.ServicerContext
    ) -> pb.ListPodSandboxMetricsResponse:
        return pb.ListPodSandboxMetricsResponse(pod_metrics=self._all())

    def StreamPodSandboxMetrics(
        self, request: pb.StreamPodSandboxMetricsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StreamPodSandboxMetricsResponse]:
        for chunk in chunks(self._all()):
            yield pb.StreamPodSandboxMetricsResponse(pod_sandbox_metrics=chunk)

    def _all(self) -> list[pb.PodSandboxMetrics]:
        now = self._clock.now_ns()
        return [
            _pod_metrics(domain.pod_metrics(stats, now))
            for stats in self._service.list_pod_stats(PodStatsFilter())
        ]


def _metric(value: domain.MetricValue) -> pb.Metric:
    return pb.Metric(
        name=value.name,
        timestamp=value.timestamp_ns,
        metric_type=_KINDS[value.kind],
        label_values=list(value.label_values),
        value=pb.UInt64Value(value=value.value),
    )


def _pod_metrics(metrics: domain.PodMetrics) -> pb.PodSandboxMetrics:
    return pb.PodSandboxMetrics(
        pod_sandbox_id=metrics.pod_id,
        metrics=[_metric(m) for m in metrics.metrics],
        container_metrics=[
            pb.ContainerMetrics(container_id=c.container_id, metrics=[_metric(m) for m in c.metrics])
            for c in metrics.containers
        ],
    )
