"""PrometheusMetrics fed by the interceptor over a real gRPC server and by the runtime's own calls."""

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.metrics.prometheus import MetricsEndpoint, PrometheusMetrics
from domain import errors
from domain.pull_progress import PullProgress
from ports.registry import Descriptor
from tests.cri_client import connect

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class _Handlers:
    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> pb.VersionResponse:
        if request.version == "fail":
            raise errors.InvalidArgument("bad version")
        return pb.VersionResponse()

    def GetContainerEvents(
        self, request: pb.GetEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ContainerEventResponse]:
        yield pb.ContainerEventResponse(container_id="a")
        yield pb.ContainerEventResponse(container_id="b")


@pytest.fixture
def endpoint() -> Iterator[tuple[PrometheusMetrics, MetricsEndpoint]]:
    metrics = PrometheusMetrics()
    served = MetricsEndpoint(metrics, enabled=True, address="127.0.0.1", port=0)
    served.start()
    yield metrics, served
    served.stop()


def scrape(endpoint: MetricsEndpoint) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_rpcs_are_counted_timed_and_failures_kept_by_code(
    endpoint: tuple[PrometheusMetrics, MetricsEndpoint], tmp_path: Path
) -> None:
    metrics, served = endpoint
    server = CriServer(
        tmp_path / "cri.sock",
        0o660,
        runtime_service([_Handlers()]),
        image_service([]),
        4,
        observers=[metrics],
    )
    server.start()
    client = connect(tmp_path / "cri.sock")
    try:
        client.runtime.Version(pb.VersionRequest())
        client.runtime.Version(pb.VersionRequest())
        with pytest.raises(grpc.RpcError):
            client.runtime.Version(pb.VersionRequest(version="fail"))
        assert [e.container_id for e in client.runtime.GetContainerEvents(pb.GetEventsRequest())] == [
            "a",
            "b",
        ]
    finally:
        client.close()
        server.stop(1)
    samples = scrape(served)
    assert samples[("pycrio_cri_operations_total", (("method", "Version"),))] == 3
    assert (
        samples[("pycrio_cri_operations_errors_total", (("code", "INVALID_ARGUMENT"), ("method", "Version")))]
        == 1
    )
    assert samples[("pycrio_cri_operations_latency_seconds_count", (("method", "Version"),))] == 3
    assert samples[("pycrio_cri_operations_total", (("method", "GetContainerEvents"),))] == 1


def test_runtime_counters(endpoint: tuple[PrometheusMetrics, MetricsEndpoint]) -> None:
    metrics, served = endpoint
    metrics.image_pull_bytes(1000)
    metrics.image_pull_bytes(24)
    metrics.image_pull_finished(True)
    metrics.image_pull_finished(False, "Unavailable")
    metrics.image_pull_finished(False)
    metrics.container_oom_killed()
    metrics.container_events_dropped(5)
    metrics.container_monitor_lost()
    samples = scrape(served)
    assert samples[("pycrio_image_pulls_bytes_total", ())] == 1024
    assert samples[("pycrio_image_pulls_success_total", ())] == 1
    assert samples[("pycrio_image_pulls_failure_total", (("reason", "Unavailable"),))] == 1
    assert samples[("pycrio_image_pulls_failure_total", (("reason", "unknown"),))] == 1
    assert samples[("pycrio_containers_oom_killed_total", ())] == 1
    assert samples[("pycrio_container_events_dropped_total", ())] == 5
    assert samples[("pycrio_containers_stopped_monitor_total", ())] == 1
    assert all(name.startswith("pycrio_") for name, _ in samples)


def test_a_disabled_endpoint_serves_nothing() -> None:
    served = MetricsEndpoint(PrometheusMetrics(), enabled=False, address="127.0.0.1", port=0)
    served.start()
    assert served.port == 0
    served.stop()


def test_running_pulls_show_their_progress(endpoint: tuple[PrometheusMetrics, MetricsEndpoint]) -> None:
    metrics, served = endpoint
    running: list[PullProgress] = []
    metrics.watch_pulls(lambda: running)
    assert not [name for name, _ in scrape(served) if name.startswith("pycrio_image_pull_progress")]
    pull = PullProgress("busybox", "docker.io", started=time.monotonic() - 2)
    pull.resolved(
        "127.0.0.1:5000", [Descriptor("tar", "sha256:a", 3000), Descriptor("tar", "sha256:b", 1000)], 0
    )
    pull.layer_present(Descriptor("tar", "sha256:b", 1000))
    pull.received(1500, time.monotonic())
    running.append(pull)
    samples = scrape(served)
    key = (("image", "busybox"), ("registry", "127.0.0.1:5000"))
    assert samples[("pycrio_image_pull_progress_bytes_done", key)] == 2500
    assert samples[("pycrio_image_pull_progress_bytes_total", key)] == 4000
    assert samples[("pycrio_image_pull_progress_layers_done", key)] == 1
    assert 0 < samples[("pycrio_image_pull_progress_bytes_per_second", key)] <= 1500 / 2
