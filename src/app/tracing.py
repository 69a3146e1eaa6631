"""Start OpenTelemetry tracing when `tracing.enabled` (the only place that imports it)."""

from collections.abc import Callable

from adapters.tracing import spans
from app.config import TracingConfig
from app.version import VERSION


def start_tracing(config: TracingConfig) -> Callable[[], None]:
    """Installs the OTLP backend; returns what flushes and stops it at shutdown."""
    if not config.enabled:
        return lambda: None
    from adapters.tracing.otel import otlp_tracing

    backend = otlp_tracing(config.endpoint, config.sampling_rate, VERSION)
    spans.install(backend)

    def stop() -> None:
        spans.install(None)
        backend.shutdown()

    return stop
