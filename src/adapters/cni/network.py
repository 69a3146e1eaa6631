"""The Network port over CNI plugins."""

from pathlib import Path

from adapters.cni.conf import CniConfigError, find_plugin, load_network_config
from ports.network import NetworkReadiness

NOT_READY_REASON = "NetworkPluginNotReady"


class CniNetwork:
    def __init__(self, conf_dir: Path, plugin_dirs: list[Path]) -> None:
        self._conf_dir = conf_dir
        self._plugin_dirs = plugin_dirs

    def readiness(self) -> NetworkReadiness:
        try:
            config = load_network_config(self._conf_dir)
        except CniConfigError as err:
            return NetworkReadiness(False, NOT_READY_REASON, f"Network plugin returns error: {err}")
        missing = [t for t in config.plugin_types if find_plugin(t, self._plugin_dirs) is None]
        if missing:
            dirs = ", ".join(map(str, self._plugin_dirs))
            return NetworkReadiness(
                False,
                NOT_READY_REASON,
                f"CNI plugin(s) {', '.join(missing)} of {config.source} not in {dirs}",
            )
        return NetworkReadiness(True)
