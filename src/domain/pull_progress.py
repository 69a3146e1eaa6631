"""How far a pull has come: per-layer start/finish lines, a periodic bytes/rate line, and what a stall names.

A long pull used to say nothing until a layer was unpacked. The image service keeps one PullProgress per
pull in flight, updated as chunks arrive; it logs a line when each layer starts and finishes and every
`interval` seconds the bytes done of the total and the rate, the metrics endpoint reads the same figures
(`snapshot`), and a stall's error names the layer and the registry it was coming from.
"""

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
    # The layer being downloaded ("" while the manifest is resolved or between layers).
    layer: str = ""
    bytes_total: int = 0
    bytes_done: int = 0
    # Bytes received from the registry (layers already present count in bytes_done, not here).
    bytes_downloaded: int = 0
    _last_report: float = field(default=0.0, repr=False)
    _layer_started: float = field(default=0.0, repr=False)

    def resolved(self, registry: str, layers: list[Descriptor], now: float) -> None:
        self.registry = registry
        self.layers_total = len(layers)
        self.bytes_total = sum(layer.size for layer in layers)
        self._last_report = now

    def layer_present(self, layer: Descriptor) -> None:
        self.layers_done += 1
        self.bytes_done += layer.size

    def layer_started(self, layer: Descriptor, now: float) -> None:
        self.layer, self._layer_started = layer.digest, now
        self._layer_line("pull layer started", layer, self.layers_done + 1, size=layer.size)

    def received(self, count: int, now: float) -> None:
        self.bytes_done += count
        self.bytes_downloaded += count
        if self.interval > 0 and now - self._last_report >= self.interval:
            self._last_report = now
            _log.info(
                "pull progress",
                image=self.image,
                registry=self.registry,
                layer=self.layer,
                bytes_done=self.bytes_done,
                bytes_total=self.bytes_total,
                bytes_per_second=round(self.rate(now)),
            )

    def layer_finished(self, layer: Descriptor, now: float) -> None:
        self.layers_done += 1
        self.layer = ""
        seconds = round(now - self._layer_started, 3)
        self._layer_line(
            "pull layer finished",
            layer,
            self.layers_done,
            seconds=seconds,
            bytes_done=self.bytes_done,
            bytes_total=self.bytes_total,
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
        if self.layer:
            where = f"layer {self.layer} ({self.layers_done + 1}/{self.layers_total}, {self.bytes_done} of "
            where += f"{self.bytes_total} bytes)"
        elif self.layers_total:
            where = f"between layers ({self.layers_done}/{self.layers_total} done)"
        else:
            where = "the manifest"
        return f"{where} from registry {self.registry}"

    def snapshot(self) -> "PullProgress":
        return replace(self)
