"""How far a pull has come: per-layer start/finish lines, a periodic bytes/rate line, and what a stall names.

A long pull used to say nothing until a layer was unpacked. The image service keeps one PullProgress per
pull in flight, updated as chunks arrive; it logs a line when each layer starts and finishes and every
`interval` seconds the bytes done of the total and the rate, the metrics endpoint reads the same figures
(`snapshot`), and a stall's error names the layers and the registry they were coming from. Several layers
of one pull download at once, each on its own thread: every update takes the progress's lock.
"""

import threading
from dataclasses import dataclass, field, replace

import structlog

from ports.registry import Descriptor

_log = structlog.get_logger("pycrio.images")


@dataclass
class PullProgress:
    image: str
    registry: str
    started: float
    interval: float = 10.0
    layers_total: int = 0
    layers_done: int = 0
    # The layers being downloaded, oldest first (none while the manifest is resolved or between layers).
    in_flight: tuple[str, ...] = ()
    bytes_total: int = 0
    bytes_done: int = 0
    # Bytes received from the registry (layers already present count in bytes_done, not here).
    bytes_downloaded: int = 0
    _last_report: float = field(default=0.0, repr=False)
    _started: dict[int, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False, init=False)

    @property
    def layer(self) -> str:
        """The oldest layer being downloaded, "" when none is."""
        return self.in_flight[0] if self.in_flight else ""

    def resolved(self, registry: str, layers: list[Descriptor], now: float) -> None:
        with self._lock:
            self.registry = registry
            self.layers_total = len(layers)
            self.bytes_total = sum(layer.size for layer in layers)
            self._last_report = now

    def layer_present(self, layer: Descriptor) -> None:
        with self._lock:
            self.layers_done += 1
            self.bytes_done += layer.size

    def layer_started(self, layer: Descriptor, index: int, now: float) -> None:
        """Layer number `index` (0-based, in the manifest's order) starts downloading."""
        with self._lock:
            self.in_flight += (layer.digest,)
            self._started[index] = now
        self._layer_line("pull layer started", layer, index + 1, size=layer.size)

    def received(self, count: int, now: float) -> None:
        with self._lock:
            self.bytes_done += count
            self.bytes_downloaded += count
            if not (self.interval > 0 and now - self._last_report >= self.interval):
                return
            self._last_report = now
            figures = {
                "layer": self.layer,
                "layers_in_flight": len(self.in_flight),
                "bytes_done": self.bytes_done,
                "bytes_total": self.bytes_total,
                "bytes_per_second": round(self.rate(now)),
            }
        _log.info("pull progress", image=self.image, registry=self.registry, **figures)

    def layer_ended(self, layer: Descriptor, index: int) -> None:
        """The layer's download stopped without finishing (the pull failed or was cancelled)."""
        with self._lock:
            self._drop(layer.digest, index)

    def _drop(self, digest: str, index: int) -> float:
        if digest in self.in_flight:
            position = self.in_flight.index(digest)
            self.in_flight = self.in_flight[:position] + self.in_flight[position + 1 :]
        return self._started.pop(index, 0.0)

    def layer_finished(self, layer: Descriptor, index: int, now: float) -> None:
        with self._lock:
            self.layers_done += 1
            seconds = round(now - self._drop(layer.digest, index), 3)
            figures = {"layers_done": self.layers_done, "bytes_done": self.bytes_done}
        self._layer_line(
            "pull layer finished", layer, index + 1, seconds=seconds, bytes_total=self.bytes_total, **figures
        )

    def _layer_line(self, event: str, layer: Descriptor, position: int, **figures: float) -> None:
        _log.info(
            event,
            image=self.image,
            registry=self.registry,
            layer=layer.digest,
            position=f"{position}/{self.layers_total}",
            **figures,
        )

    def rate(self, now: float) -> float:
        """Bytes a second received from the registry since the pull started."""
        elapsed = now - self.started
        return self.bytes_downloaded / elapsed if elapsed > 0 else 0.0

    def stalled_at(self) -> str:
        """Where a stalled pull stood, for its error: the layer (or the manifest) and the registry."""
        if len(self.in_flight) == 1:
            where = f"layer {self.layer} ({self.layers_done + 1}/{self.layers_total}, {self.bytes_done} of "
            where += f"{self.bytes_total} bytes)"
        elif self.in_flight:
            where = ", ".join(f"layer {digest}" for digest in self.in_flight)
            where += f" ({self.layers_done}/{self.layers_total} done, {self.bytes_done} of "
            where += f"{self.bytes_total} bytes)"
        elif self.layers_total:
            where = f"between layers ({self.layers_done}/{self.layers_total} done)"
        else:
            where = "the manifest"
        return f"{where} from registry {self.registry}"

    def snapshot(self) -> "PullProgress":
        with self._lock:
            return replace(self, _started={})
