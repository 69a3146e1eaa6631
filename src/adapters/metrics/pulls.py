"""Image pull metrics without metrics code in the image service: a Registry decorator that counts the
bytes received, and a decorator of the image handler group that counts PullImage successes and failures.

Wiring (app/container.py): give the image service `MeteredRegistry(<the registry>, runtime_metrics)` and
register `PullMetricsHandlers(<the image handlers>, runtime_metrics)` in place of the image handlers.
"""

from collections.abc import Iterator
from typing import Any

import grpc

from ports.metrics import RuntimeMetrics
from ports.registry import Descriptor, Platform, Registry, RegistryAuth, ResolvedImage
from ports.signatures import SigstoreSignature


class MeteredRegistry:
    def __init__(self, registry: Registry, metrics: RuntimeMetrics) -> None:
        self._registry = registry
        self._metrics = metrics

    def resolve(self, image: str, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        return self._registry.resolve(image, auth, platform)

    def open_blob(self, image: ResolvedImage, blob: Descriptor, auth: RegistryAuth | None) -> Iterator[bytes]:
        return self._count(self._registry.open_blob(image, blob, auth))

    def extension_signatures(self, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes] | None:
        return self._registry.extension_signatures(image, auth)

    def signature_attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> list[SigstoreSignature]:
        return self._registry.signature_attachments(image, auth)

    def _count(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._metrics.image_pull_bytes(len(chunk))
            yield chunk


class PullMetricsHandlers:
    def __init__(self, handlers: object, metrics: RuntimeMetrics) -> None:
        self._handlers = handlers
        self._metrics = metrics

    def PullImage(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            response = self._handlers.PullImage(request, context)  # type: ignore[attr-defined]
        except Exception as error:
            # The error class is a short, fixed word (NotFound, Unavailable, DeadlineExceeded, ...).
            self._metrics.image_pull_finished(False, type(error).__name__)
            raise
        self._metrics.image_pull_finished(True)
        return response

    def __getattr__(self, name: str) -> Any:
        """Every other RPC of the image group passes through unchanged."""
        return getattr(self._handlers, name)
