"""The OpenTelemetry backend of adapters/tracing/spans.py: imported only when `tracing.enabled`."""

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Status, StatusCode

from adapters.tracing.spans import AttributeValue


class OpenTelemetryTracing:
    def __init__(self, processor: SpanProcessor, sampling_rate: float, version: str) -> None:
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "pycrio", "service.version": version}),
            sampler=ParentBased(TraceIdRatioBased(sampling_rate)),
        )
        self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("pycrio", version)

    def span(self, name: str, attributes: Mapping[str, AttributeValue]) -> AbstractContextManager[Any]:
        return self._tracer.start_as_current_span(name, attributes=dict(attributes))

    def annotate(self, attributes: Mapping[str, AttributeValue], error: str = "") -> None:
        current = trace.get_current_span()
        if attributes:
            current.set_attributes(dict(attributes))
        if error:
            current.set_status(Status(StatusCode.ERROR, error))

    def ids(self) -> dict[str, str]:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid or not context.trace_flags.sampled:
            return {}
        return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}

    def shutdown(self) -> None:
        self.provider.shutdown()


def otlp_tracing(endpoint: str, sampling_rate: float, version: str) -> OpenTelemetryTracing:
    """Spans batched to an OTLP/gRPC collector at `endpoint` (host:port, plain text: a node-local agent)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return exporter_tracing(OTLPSpanExporter(endpoint=endpoint, insecure=True), sampling_rate, version)


def exporter_tracing(exporter: SpanExporter, sampling_rate: float, version: str) -> OpenTelemetryTracing:
    return OpenTelemetryTracing(BatchSpanProcessor(exporter), sampling_rate, version)
