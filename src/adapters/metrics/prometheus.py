"""RuntimeMetrics kept in a Prometheus registry, and the HTTP endpoint that serves it (off by default).

Every name starts with `pycrio_`. The registry is private to the daemon, so tests can build several.
"""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from adapters.readiness import Wakeup, serve_until_stopped
from domain.pull_progress import PullProgress

_log = structlog.get_logger("pycrio.metrics")

# CRI calls range from microseconds (Version) to minutes (PullImage, a stuck StopContainer).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class PrometheusMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._operations = Counter(
            "pycrio_cri_operations", "CRI calls served, by method.", ["method"], registry=self.registry
        )
        self._errors = Counter(
            "pycrio_cri_operations_errors",
            "CRI calls that ended with an error, by method and gRPC status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "pycrio_cri_operations_latency_seconds",
            "How long CRI calls took (streams: until the stream ended), by method.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._pull_bytes = Counter(
            "pycrio_image_pulls_bytes",
            "Bytes received from registries while pulling images.",
            registry=self.registry,
        )
        self._pull_successes = Counter(
            "pycrio_image_pulls_success", "Image pulls that succeeded.", registry=self.registry
        )
        self._pull_failures = Counter(
            "pycrio_image_pulls_failure",
            "Image pulls that failed, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self._pull_trust = Counter(
            "pycrio_image_pulls_signature_decisions",
            "Signature policy decisions on pulls: verified, rejected, accepted_without_signature.",
            ["outcome"],
            registry=self.registry,
        )
        self._ooms = Counter(
            "pycrio_containers_oom_killed",
            "Containers killed by the kernel's OOM killer.",
            registry=self.registry,
        )
        self._monitors_lost = Counter(
            "pycrio_containers_stopped_monitor",
            "Containers whose monitor (conmon) died while they ran on.",
            registry=self.registry,
        )
        self._dropped = Counter(
            "pycrio_container_events_dropped",
            "Container events not delivered to a GetContainerEvents client whose queue was full.",
            registry=self.registry,
        )

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        self._operations.labels(method).inc()
        self._latency.labels(method).observe(seconds)
        if code != "OK":
            self._errors.labels(method, code).inc()

    def image_pull_bytes(self, count: int) -> None:
        self._pull_bytes.inc(count)

    def image_pull_finished(self, succeeded: bool, reason: str = "") -> None:
        if succeeded:
            self._pull_successes.inc()
        else:
            self._pull_failures.labels(reason or "unknown").inc()

    def image_pull_trust(self, outcome: str) -> None:
        self._pull_trust.labels(outcome).inc()

    def container_monitor_lost(self) -> None:
        self._monitors_lost.inc()

    def container_oom_killed(self) -> None:
        self._ooms.inc()

    def container_events_dropped(self, count: int) -> None:
        self._dropped.inc(count)

    def watch_pulls(self, pulls: Callable[[], list[PullProgress]]) -> None:
        """Serve the running pulls' progress, read from `pulls` at each scrape."""
        self.registry.register(PullProgressCollector(pulls))


class PullProgressCollector(Collector):
    """Gauges per running pull, by image and registry: the figures of the "pull progress" log lines."""

    def __init__(
        self, pulls: Callable[[], list[PullProgress]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._pulls = pulls
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        labels = ["image", "registry"]
        done = GaugeMetricFamily(
            "pycrio_image_pull_progress_bytes_done",
            "Bytes of a running pull's layers done so far.",
            labels=labels,
        )
        total = GaugeMetricFamily(
            "pycrio_image_pull_progress_bytes_total", "Bytes of all layers of a running pull.", labels=labels
        )
        rate = GaugeMetricFamily(
            "pycrio_image_pull_progress_bytes_per_second",
            "Bytes a second a running pull has received from its registry since it started.",
            labels=labels,
        )
        layers = GaugeMetricFamily(
            "pycrio_image_pull_progress_layers_done", "Layers of a running pull done so far.", labels=labels
        )
        now = self._clock()
        for pull in self._pulls():
            key = [pull.image, pull.registry]
            done.add_metric(key, pull.bytes_done)
            total.add_metric(key, pull.bytes_total)
            rate.add_metric(key, pull.rate(now))
            layers.add_metric(key, pull.layers_done)
        yield from (done, total, rate, layers)

    def describe(self) -> Iterator[Metric]:
        return iter(())


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged to stderr."""


def _metrics_server(address: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    """prometheus_client's WSGI app on a threading server whose accept loop is ours (no 0.5 s poll)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": family, "timeout": 0})
    return make_server(address, port, make_wsgi_app(registry), server_class, handler_class=_QuietHandler)


class MetricsEndpoint:
    """Serves /metrics over HTTP on `address:port` when enabled; a background service of the daemon."""

    def __init__(self, metrics: PrometheusMetrics, enabled: bool, address: str, port: int) -> None:
        self._metrics = metrics
        self._enabled = enabled
        self._address = address
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._stop: Wakeup | None = None

    def start(self) -> None:
        if not self._enabled or self._server is not None:
            return
        self._server = _metrics_server(self._address, self._port, self._metrics.registry)
        self._stop = Wakeup()
        self._thread = threading.Thread(
            target=serve_until_stopped, args=(self._server, self._stop), name="metrics", daemon=True
        )
        self._thread.start()
        _log.info("serving metrics", address=self._address, port=self.port)

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the kernel chose for 0)."""
        return self._server.server_port if self._server is not None else self._port

    def stop(self) -> None:
        if self._server is None:
            return
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server.server_close()
        if self._stop is not None:
            self._stop.close()
            self._stop = None
        self._server = None
