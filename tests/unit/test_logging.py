"""One format for every line: pycrio's structlog events and the libraries' stdlib records."""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.interceptor import object_ids
from app.config import LogConfig
from app.logging import configure_logging, current_level, set_level


@pytest.fixture
def stderr() -> Iterator[io.StringIO]:
    captured = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield captured
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _lines(captured: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.getvalue().splitlines()]


def test_library_records_and_pycrio_events_share_one_json_format(stderr: io.StringIO) -> None:
    configure_logging(LogConfig(level="info", format="json"), stderr)
    structlog.contextvars.bind_contextvars(request_id="r1", pod_sandbox_id="p1")
    structlog.get_logger("pycrio.cri").info("rpc", code="OK")
    logging.getLogger("httpx").info("HTTP Request: %s %s", "GET", "http://127.0.0.1/v2/")
    logging.getLogger("grpc._server").warning("exception calling application")
    lines = _lines(stderr)
    assert [(line["logger"], line["level"], line["event"]) for line in lines] == [
        ("pycrio.cri", "info", "rpc"),
        ("httpx", "info", "HTTP Request: GET http://127.0.0.1/v2/"),
        ("grpc._server", "warning", "exception calling application"),
    ]
    for line in lines:
        assert line["request_id"] == "r1"
        assert line["pod_sandbox_id"] == "p1"
        assert line["timestamp"].endswith("Z")


def test_the_level_applies_to_libraries_and_changes_live(stderr: io.StringIO) -> None:
    configure_logging(LogConfig(level="warning", format="json"), stderr)
    logging.getLogger("httpx").info("hidden")
    structlog.get_logger("pycrio").info("hidden too")
    set_level("debug")
    assert current_level() == "debug"
    logging.getLogger("httpx").debug("shown")
    structlog.get_logger("pycrio").debug("shown too")
    assert [line["event"] for line in _lines(stderr)] == ["shown", "shown too"]


def test_console_format_names_the_logger_for_library_lines(stderr: io.StringIO) -> None:
    configure_logging(LogConfig(level="info", format="console"), stderr)
    logging.getLogger("httpx").info("HTTP Request: GET x")
    (line,) = stderr.getvalue().splitlines()
    assert "[httpx" in line and "HTTP Request: GET x" in line and "[info" in line


def test_request_object_ids_are_taken_from_the_request() -> None:
    create = pb.CreateContainerRequest(
        pod_sandbox_id="pod1", config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name="web"))
    )
    assert object_ids(create) == {"pod_sandbox_id": "pod1", "name": "web"}
    pull = pb.PullImageRequest(
        image=pb.ImageSpec(image="busybox"),
        sandbox_config=pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", namespace="ns")),
    )
    assert object_ids(pull) == {"image": "busybox"}
    assert object_ids(pb.StopContainerRequest(container_id="c1")) == {"container_id": "c1"}


def test_lines_inside_a_traced_call_carry_its_trace_and_span_ids(stderr: io.StringIO) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from adapters.tracing import spans
    from adapters.tracing.otel import OpenTelemetryTracing

    configure_logging(LogConfig(level="info", format="json"), stderr)
    exporter = InMemorySpanExporter()
    spans.install(OpenTelemetryTracing(SimpleSpanProcessor(exporter), 1.0, "test"))
    try:
        structlog.get_logger("pycrio").info("outside")
        with spans.span("cri.Version"):
            logging.getLogger("httpx").info("inside")
    finally:
        spans.install(None)
    outside, inside = _lines(stderr)
    assert "trace_id" not in outside
    (finished,) = exporter.get_finished_spans()
    assert finished.context is not None
    assert inside["trace_id"] == f"{finished.context.trace_id:032x}"
    assert inside["span_id"] == f"{finished.context.span_id:016x}"
