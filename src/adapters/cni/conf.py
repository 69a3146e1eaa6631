"""Finding and parsing the CNI network configuration a node uses.

Like cri-o and containerd, the lexically first `.conflist`, `.conf` or `.json` file of the config directory
wins; a single-plugin `.conf` is wrapped into a list of one.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONF_SUFFIXES = (".conflist", ".conf", ".json")


class CniConfigError(Exception):
    """No usable network configuration; the message says why."""


@dataclass(frozen=True)
class NetworkConfigList:
    name: str
    cni_version: str
    plugins: list[dict[str, Any]]
    source: Path
    raw: dict[str, Any] = field(repr=False)

    @property
    def plugin_types(self) -> list[str]:
        return [str(p["type"]) for p in self.plugins]


def load_network_config(conf_dir: Path) -> NetworkConfigList:
    """The first usable configuration in `conf_dir`; later files are skipped only when invalid."""
    if not conf_dir.is_dir():
        raise CniConfigError(f"no CNI configuration directory {conf_dir}")
    candidates = sorted(p for p in conf_dir.iterdir() if p.suffix in CONF_SUFFIXES and p.is_file())
    if not candidates:
        raise CniConfigError(f"no CNI configuration file in {conf_dir}")
    problems = []
    for path in candidates:
        try:
            return parse_network_config(path)
        except CniConfigError as err:
            problems.append(str(err))
    raise CniConfigError("; ".join(problems))


def parse_network_config(path: Path) -> NetworkConfigList:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CniConfigError(f"{path}: {err}") from err
    if not isinstance(data, dict):
        raise CniConfigError(f"{path}: not a JSON object")
    if path.suffix != ".conflist" and "plugins" not in data:
        if "type" not in data:
            raise CniConfigError(f"{path}: a network config needs a type")
        plugin = dict(data)
        data = {"cniVersion": data.get("cniVersion", ""), "name": data.get("name", ""), "plugins": [plugin]}
    name, version, plugins = data.get("name"), data.get("cniVersion", ""), data.get("plugins")
    if not isinstance(name, str) or not name:
        raise CniConfigError(f"{path}: missing network name")
    if not isinstance(plugins, list) or not plugins:
        raise CniConfigError(f"{path}: no plugins")
    for index, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str):
            raise CniConfigError(f"{path}: plugins[{index}] has no type")
    return NetworkConfigList(name=name, cni_version=str(version), plugins=plugins, source=path, raw=data)


def find_plugin(plugin_type: str, plugin_dirs: list[Path]) -> Path | None:
    for directory in plugin_dirs:
        candidate = directory / plugin_type
        if candidate.is_file():
            return candidate
    return None
