"""Generated configs: containerd's config.toml, pycrio's flags, the CNI conflist, the registry's YAML."""

import ipaddress
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bench import cni, containerd, pycrio_daemon, registry

CRI = "io.containerd.grpc.v1.cri"


def generated(tmp_path: Path) -> dict[str, Any]:
    layout = containerd.ContainerdLayout(tmp_path / "containerd", tmp_path / "run" / "containerd")
    config = containerd.containerd_config(
        layout, "127.0.0.1:5000/pcbench/pause:1", "127.0.0.1:5000", tmp_path / "net.d"
    )
    parsed: dict[str, Any] = tomllib.loads(containerd.render_config(config))
    return parsed


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [
            *(key for key in value if isinstance(key, str)),
            *(s for v in value.values() for s in strings(v)),
        ]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def test_containerd_config_is_version_2_on_private_dirs(tmp_path: Path) -> None:
    config = generated(tmp_path)
    assert config["version"] == 2
    private = str(tmp_path / "containerd")
    assert config["root"].startswith(private)
    assert config["state"] == str(tmp_path / "run" / "containerd" / "state")
    assert config["grpc"]["address"] == str(tmp_path / "run" / "containerd" / "containerd.sock")
    assert config["plugins"]["io.containerd.internal.v1.opt"]["path"].startswith(private)
    # Every absolute path it names is private, except the host binaries it runs.
    shared = {"/usr/lib/cni", "/usr/sbin/runc"}
    for text in strings(config):
        if text.startswith("/"):
            assert text.startswith(str(tmp_path)) or text in shared, text


def test_containerd_cri_plugin_settings(tmp_path: Path) -> None:
    cri = generated(tmp_path)["plugins"][CRI]
    assert cri["sandbox_image"] == "127.0.0.1:5000/pcbench/pause:1"
    assert cri["restrict_oom_score_adj"] is True
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    assert cri["cni"]["conf_dir"] == str(tmp_path / "net.d")
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is False
    assert runc["options"]["Root"].startswith(str(tmp_path))


def test_containerd_reaches_the_registry_over_plain_http(tmp_path: Path) -> None:
    registry_settings = generated(tmp_path)["plugins"][CRI]["registry"]
    assert registry_settings["mirrors"]["127.0.0.1:5000"]["endpoint"] == ["http://127.0.0.1:5000"]
    assert registry_settings["configs"]["127.0.0.1:5000"]["tls"]["insecure_skip_verify"] is True


def test_shim_socket_path_matches_containerd_1_6() -> None:
    # A pair observed on a host: a moby shim's id and the socket containerd 1.6 made for it.
    shim_id = "61e3ea2ea0c560c966a9dc707bc036ae1f76f7432950fb32a19d255c44189b30"
    path = containerd.shim_socket_path(Path("/var/run/docker/containerd/containerd.sock"), shim_id, "moby")
    assert path == Path("/run/containerd/s/5b4e6e64ea8387910dc689a73d98651bc13b033b2d1fb8a7c430d11f722bae03")


def test_pycrio_settings_keep_every_path_private(tmp_path: Path) -> None:
    settings = pycrio_daemon.pycrio_settings(tmp_path / "pycrio", tmp_path / "run", tmp_path / "net.d")
    keys = {setting.split("=", 1)[0]: setting.split("=", 1)[1] for setting in settings}
    for key in (
        "grpc.listen",
        "runtime.root",
        "runtime.run_dir",
        "runtime.runtimes.runc.root",
        "image.registries_conf",
        "image.signature_policy",
        "image.signature_policy_dir",
        "image.registries_d",
        "network.cni_conf_dir",
    ):
        assert str(tmp_path) in keys[key], key
    assert json.loads(keys["network.cni_plugin_dirs"]) == ["/usr/lib/cni"]
    assert keys["runtime.cgroup_driver"] == '"cgroupfs"'


def test_pycrio_flags_are_accepted_by_its_config_loader(tmp_path: Path) -> None:
    from app.config import load

    settings = pycrio_daemon.pycrio_settings(tmp_path / "pycrio", tmp_path / "run", tmp_path / "net.d")
    config = load(tmp_path / "missing.toml", None, settings)
    assert config.socket_path == tmp_path / "run" / "pycrio.sock"
    assert config.runtime.runtimes["runc"].root == str(tmp_path / "run" / "runc")
    assert config.runtime.root == str(tmp_path / "pycrio" / "root")
    assert config.network.cni_conf_dir == str(tmp_path / "net.d")


def test_registries_conf_marks_the_bench_registry_insecure() -> None:
    parsed = tomllib.loads(pycrio_daemon.registries_conf("127.0.0.1:5000"))
    assert parsed["registry"] == [{"location": "127.0.0.1:5000", "insecure": True}]
    assert parsed["unqualified-search-registries"] == []


def test_cni_conflist_uses_the_runs_bridge_and_subnet(tmp_path: Path) -> None:
    network = cni.BenchNetwork("pcbench-a1b2c3", "pcba1b2c3", "10.90.8.0/22")
    path = cni.write_conf_dir(tmp_path / "net.d", tmp_path / "ipam", network)
    conf = json.loads(path.read_text())
    assert conf["name"] == "pcbench-a1b2c3"
    bridge = conf["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "pcba1b2c3"
    assert bridge["ipMasq"] is False  # no iptables rules to outlive the run
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "ipam")
    assert bridge["ipam"]["ranges"][0][0]["subnet"] == "10.90.8.0/22"
    assert {plugin["type"] for plugin in conf["plugins"]} == {"bridge", "loopback"}


ROUTE_TABLE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "pcbench0\t00005A0A\t00000000\t0001\t0\t0\t0\t00F0FFFF\t0\t0\t0\n"
)


def test_routes_are_read_from_proc_net_route() -> None:
    assert cni.parse_routes(ROUTE_TABLE) == [
        ipaddress.IPv4Network("0.0.0.0/0"),
        ipaddress.IPv4Network("10.90.0.0/20"),
    ]


def test_a_run_takes_a_subnet_no_route_overlaps_starting_from_its_slot() -> None:
    routes = cni.parse_routes(ROUTE_TABLE)  # the default route does not count; 10.90.0.0/20 does
    assert cni.free_subnet("000000", routes) == ipaddress.IPv4Network("10.90.16.0/22")
    assert cni.free_subnet("000005", routes) == ipaddress.IPv4Network("10.90.20.0/22")
    assert cni.free_subnet("00003f", []) == ipaddress.IPv4Network("10.90.252.0/22")
    with pytest.raises(RuntimeError, match="routed already"):
        cni.free_subnet("000000", [ipaddress.IPv4Network("10.90.0.0/16")])


def test_a_runs_network_names_fit_the_kernels_limits() -> None:
    network = cni.network_for("c0ffee")
    assert network.name == "pcbench-c0ffee"
    assert network.bridge == "pcbc0ffee" and len(network.bridge) <= 15
    assert ipaddress.IPv4Network(network.subnet).subnet_of(cni.RANGE)


def test_registry_config_listens_on_loopback_only(tmp_path: Path) -> None:
    parsed = json.loads(registry.registry_config(tmp_path / "storage", 5123))
    assert parsed["http"]["addr"] == "127.0.0.1:5123"
    assert parsed["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "storage")


def test_cached_cni_results_of_the_bench_network_are_removed(tmp_path: Path) -> None:
    ours, theirs = "a" * 64, "b" * 64
    names = [
        f"pcbench-a1b2c3-{ours}-eth0",
        f"cni-loopback-{ours}-lo",
        f"pcbench-d4e5f6-{theirs}-eth0",  # another run's
        f"cni-loopback-{theirs}-lo",
    ]
    for name in names:
        (tmp_path / name).write_text("{}")
    removed = cni.remove_cached_results("pcbench-a1b2c3", tmp_path)
    assert sorted(path.name for path in removed) == sorted(names[:2])
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(names[2:])
    assert cni.remove_cached_results("pcbench-a1b2c3", tmp_path / "missing") == []
