"""NetworkReady from the CNI config directory and plugin dirs."""

import json
from pathlib import Path

from adapters.cni.network import CniNetwork


def _plugins(tmp_path: Path, *names: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        (bin_dir / name).write_text("#!/bin/sh\n")
    return bin_dir


def test_missing_dir_is_not_ready(tmp_path: Path) -> None:
    readiness = CniNetwork(tmp_path / "none", [tmp_path]).readiness()
    assert not readiness.ready
    assert readiness.reason == "NetworkPluginNotReady"
    assert "none" in readiness.message


def test_first_conflist_with_its_plugins_is_ready(tmp_path: Path) -> None:
    conf = tmp_path / "net.d"
    conf.mkdir()
    (conf / "10-a.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "a", "plugins": [{"type": "bridge"}, {"type": "portmap"}]})
    )
    assert not CniNetwork(conf, [_plugins(tmp_path, "bridge")]).readiness().ready
    assert CniNetwork(conf, [_plugins(tmp_path, "bridge", "portmap")]).readiness().ready


def test_single_plugin_conf_and_broken_files(tmp_path: Path) -> None:
    conf = tmp_path / "net.d"
    conf.mkdir()
    (conf / "05-broken.conflist").write_text("{not json")
    (conf / "10-b.conf").write_text(json.dumps({"cniVersion": "0.4.0", "name": "b", "type": "bridge"}))
    assert CniNetwork(conf, [_plugins(tmp_path, "bridge")]).readiness().ready
