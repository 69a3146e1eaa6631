"""Spans for the calls an operator wants to see in a trace: one per CRI call (the interceptor) with child
spans for runtime, monitor, CNI, registry and unpack calls (their adapters).

Tracing is ambient like logging: adapters call `span(...)`, which does nothing, at the cost of one global
read, until app/tracing.py installs a backend (only when `tracing.enabled`, so OpenTelemetry is never
imported otherwise). The backend's context is kept in contextvars, so the trace follows a pull into its
worker thread (domain/images.py copies the caller's context).
"""

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

AttributeValue = str | int | float | bool


class TracingBackend(Protocol):
    def span(self, name: str, attributes: Mapping[str, AttributeValue]) -> AbstractContextManager[Any]: ...

    def annotate(self, attributes: Mapping[str, AttributeValue], error: str = "") -> None:
        """Attributes (and an error status when `error`) on the current span."""
        ...

    def ids(self) -> dict[str, str]:
        """trace_id and span_id of the current span, for log lines; empty outside a sampled span."""
        ...


_backend: TracingBackend | None = None
_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()


def install(backend: TracingBackend | None) -> None:
    global _backend
    _backend = backend


def installed() -> bool:
    """Whether spans are recorded: callers skip building a span's attributes when they are not."""
    return _backend is not None


def span(name: str, **attributes: AttributeValue) -> AbstractContextManager[Any]:
    backend = _backend
    return _NOTHING if backend is None else backend.span(name, attributes)


def annotate(error: str = "", **attributes: AttributeValue) -> None:
    backend = _backend
    if backend is not None:
        backend.annotate(attributes, error)


def current_ids() -> dict[str, str]:
    backend = _backend
    return {} if backend is None else backend.ids()
