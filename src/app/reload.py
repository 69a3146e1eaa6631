"""SIGHUP: re-read the configuration and apply what can change without a restart (cri-o's reload).

Live keys (`setting(..., live=True)` in app/config.py) are applied in place: the log level of every
logger, the pinned images. Files that are read at every use (registries.conf and its drop-ins, the
signature policy, the CNI config dir) need no action, but their content is compared so the log line says
whether they changed. Other changed keys are named as needing a restart and keep their running value.
A config that no longer loads is refused as a whole: the daemon keeps running on the old one.
"""

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from app.config import Config, ConfigError
from app.config_docs import all_keys
from app.logging import set_level
from domain.images import ImageService

_log = structlog.get_logger("pycrio.reload")


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    applied: list[str]
    needs_restart: list[str]
    files_changed: list[str]


class Reloader:
    def __init__(self, config: Config, read_config: Callable[[], Config], images: ImageService) -> None:
        self._config = config
        self._read_config = read_config
        # How each live key takes effect; tests/unit/test_reload.py checks that every live key has one.
        self.appliers: dict[str, Callable[[Any], None]] = {
            "log.level": set_level,
            "image.pinned_images": images.set_pinned_images,
        }
        self._fingerprints = _fingerprints(config)

    def reload(self) -> ReloadResult | None:
        try:
            fresh = self._read_config()
        except ConfigError as err:
            _log.error(
                "reload refused: the configuration does not load; keeping the running one", error=str(err)
            )
            return None
        old = {key.name: key for key in all_keys(self._config)}
        applied, needs_restart = [], []
        for key in all_keys(fresh):
            before = old.get(key.name)
            if before is not None and before.value == key.value:
                continue
            if key.live and key.name in self.appliers:
                self.appliers[key.name](key.value)
                _set(self._config, key.name, key.value)
                applied.append(f"{key.name}={key.value!r}")
            else:
                needs_restart.append(key.name)
        needs_restart += sorted(set(old) - {key.name for key in all_keys(fresh)})
        fingerprints = _fingerprints(self._config)
        files_changed = sorted(
            path
            for path in fingerprints.keys() | self._fingerprints.keys()
            if fingerprints.get(path) != self._fingerprints.get(path)
        )
        self._fingerprints = fingerprints
        result = ReloadResult(applied, needs_restart, files_changed)
        _log.info(
            "reloaded" if applied or files_changed else "reloaded: nothing changed",
            applied=applied,
            files_changed=files_changed,
            needs_restart=needs_restart,
        )
        return result


def _set(config: Config, dotted: str, value: Any) -> None:
    section, name = dotted.split(".")
    setattr(getattr(config, section), name, value)


def _fingerprints(config: Config) -> dict[str, str]:
    """A digest of every file read at each use: registries.conf (+ drop-ins), the policy, CNI configs."""
    files = [Path(config.image.registries_conf), Path(config.image.signature_policy)]
    files += sorted(Path(config.image.registries_conf_dir).glob("*.conf"))
    conf_dir = Path(config.network.cni_conf_dir)
    files += sorted(p for p in conf_dir.glob("*") if p.suffix in (".conf", ".conflist", ".json"))
    digests = {}
    for path in files:
        try:
            digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
    return digests
