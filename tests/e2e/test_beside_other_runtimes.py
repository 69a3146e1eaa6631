"""pycrio beside another runtime on one host: containerd 1.6 with runc (set up as the bench sets it up), or a
second pycrio on its own root. Both use one CNI network (same name, bridge, host-local data dir, portmap) and
one kubelet-style cgroup tree, as runtimes on a node do.

The other runtime runs pods and containers with host ports first. pycrio then runs its own, is killed with
SIGKILL once with pods running and once in the middle of a pod's CNI ADD (held there by a gate plugin at the
end of the chain, after host-local and portmap have done their part), restarts and recovers (the cut pod
is rolled back with a DEL of its own id), makes one more pod, and removes all of its pods. Afterwards
everything of the other runtime is as it was: its pod and container processes, network namespaces and
mounts, cgroups, IPAM files, NAT rules, log files, and a host port that still reaches its pod. What pycrio
made is gone.
"""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.generated import api_pb2_grpc
from adapters.namespaces.linux import process_start_time
from bench import images as bench_images
from bench.cleanup import kill_cgroup_tree, unmount_under
from bench.containerd import CRI, ContainerdDaemon, ContainerdLayout, containerd_config
from bench.pycrio_daemon import registries_conf
from bench.registry import LocalRegistry
from tests.e2e.daemon import Daemon
from tests.pod_host import (
    HostTestNetwork,
    cgroup_leftovers,
    cleanup,
    cleanup_run_dir,
    connect,
    free_port,
    host_address,
    make_test_network,
    serve_in_netns,
)

pytestmark = pytest.mark.root

NAMESPACE = "e2e-coexist"
HOST_PLUGINS = "/usr/lib/cni"
CONTAINER_PORT = 8080


class Cri(Protocol):
    runtime: api_pb2_grpc.RuntimeServiceStub
    image: api_pb2_grpc.ImageServiceStub


@dataclass(frozen=True)
class Images:
    registry: LocalRegistry
    pause: str
    busybox: str


@dataclass
class Pod:
    id: str
    name: str
    host_port: int
    netns: str
    log: Path
    pids: dict[int, int] = field(default_factory=dict)  # pid -> start time: the infra and the container


@dataclass(frozen=True)
class Footprint:
    """What a runtime's pods hold on the host, as far as another runtime could damage it."""

    processes: dict[int, int | None]
    netns_mounts: set[str]
    cgroups: set[str]
    ipam: dict[str, str]
    nat_rules: set[str]
    logs: set[Path]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    workdir = tmp_path_factory.mktemp("coexist-images")
    registry = LocalRegistry(workdir / "registry").start()
    try:
        pause = registry.push(bench_images.build(bench_images.pause_spec(), workdir / "cache"))
        busybox = registry.push(bench_images.build(bench_images.busybox_spec(), workdir / "cache"))
        yield Images(registry, pause, busybox)
    finally:
        registry.stop()


# The last plugin of the chain: passes the result on, but first, while the gate file exists, it waits
# (after writing the pod's id beside it), so that a test can kill the runtime in the middle of an ADD.
GATE_PLUGIN = """
import json, os, sys, time
conf = json.load(sys.stdin)
command = os.environ.get("CNI_COMMAND")
if command == "VERSION":
    print(json.dumps({"cniVersion": conf.get("cniVersion", "1.0.0"),
                      "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}))
elif command == "ADD":
    gate = conf["gate"]
    if os.path.exists(gate):
        with open(gate + ".reached", "w") as handle:
            handle.write(os.environ["CNI_CONTAINERID"])
        while os.path.exists(gate):
            time.sleep(0.05)
    print(json.dumps(dict(conf.get("prevResult") or {}, cniVersion=conf["cniVersion"])))
"""


@dataclass(frozen=True)
class Gate:
    closed: Path
    plugin_dir: Path

    @property
    def reached(self) -> Path:
        return Path(f"{self.closed}.reached")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[HostTestNetwork]:
    made = make_test_network(tmp_path, portmap=True)
    yield made
    cleanup(made)


@pytest.fixture
def gate(tmp_path: Path, network: HostTestNetwork) -> Gate:
    """The gate plugin appended to the network's chain, in a plugin dir that also links the host's."""
    made = Gate(tmp_path / "gate", tmp_path / "cni-bin")
    made.plugin_dir.mkdir()
    for plugin in Path(HOST_PLUGINS).iterdir():
        (made.plugin_dir / plugin.name).symlink_to(plugin)
    script = made.plugin_dir / "pcx-gate"
    script.write_text(f"#!{sys.executable}\n{GATE_PLUGIN}")
    script.chmod(0o755)
    conflist = next(network.conf_dir.iterdir())
    document = json.loads(conflist.read_text())
    document["plugins"].append({"type": "pcx-gate", "gate": str(made.closed)})
    conflist.write_text(json.dumps(document, indent=2))
    return made


@pytest.fixture
def cgroup_root() -> Iterator[str]:
    """The kubelet's part of the tree for this test: /<root>/kubepods holds every pod of both runtimes."""
    root = f"/pcx-{secrets.token_hex(3)}"
    yield root
    kill_cgroup_tree(root)  # what a failed run left running, of either runtime (the tree is this test's)


def _pycrio(workdir: Path, network: HostTestNetwork, images: Images, gate: Gate) -> Daemon:
    (workdir).mkdir(parents=True, exist_ok=True)
    conf = workdir / "registries.conf"
    conf.write_text(registries_conf(images.registry.host))
    return Daemon(
        workdir,
        [
            f'network.cni_conf_dir="{network.conf_dir}"',
            f'network.cni_plugin_dirs=["{gate.plugin_dir}"]',
            f'image.registries_conf="{conf}"',
            f'image.registries_conf_dir="{workdir / "none"}"',
        ],
    )


@pytest.fixture(params=["containerd", "pycrio"])
def other(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    network: HostTestNetwork,
    gate: Gate,
    images: Images,
    cgroup_root: str,
) -> Iterator[Cri]:
    """The other runtime on the host, started on its own dirs and stopped (its pods removed) at the end,
    before the cgroup tree goes."""
    if request.param == "pycrio":
        second = _pycrio(tmp_path / "other-pycrio", network, images, gate).start()
        try:
            yield second.client
            _remove_all(second.client)
        finally:
            second.stop()
            cleanup_run_dir(second.workdir / "run")
            unmount_under(second.workdir)
        return
    layout = ContainerdLayout(tmp_path / "containerd", Path(f"/run/pcx-{secrets.token_hex(3)}"))
    config = containerd_config(
        layout, images.pause, images.registry.host, network.conf_dir, cni_bin_dir=str(gate.plugin_dir)
    )
    config["plugins"][CRI]["netns_mounts_under_state_dir"] = False  # its pins in the shared /run/netns
    containerd = ContainerdDaemon(layout, config)
    cri = containerd.start()
    try:
        yield cri
        _remove_all(cri)
    finally:
        cri.close()
        containerd.stop()
        subprocess.run(["umount", "-R", "-l", str(layout.run_dir)], capture_output=True, check=False)
        subprocess.run(["rm", "-rf", str(layout.run_dir)], check=False)


def test_pycrio_crashing_recovering_and_tearing_down_leaves_the_other_runtime_alone(
    other: Cri, network: HostTestNetwork, gate: Gate, images: Images, cgroup_root: str, tmp_path: Path
) -> None:
    kubepods = f"{cgroup_root}/kubepods"
    theirs = [_run_pod(other, f"theirs-{i}", kubepods, images.busybox, tmp_path) for i in range(2)]
    network.sandbox_ids.update(pod.id for pod in theirs)
    server = serve_in_netns(theirs[0].netns, CONTAINER_PORT, "theirs")
    try:
        address = host_address()
        assert connect(address, theirs[0].host_port) == "theirs"
        before = _footprint(theirs, network, kubepods)
        assert all(before.processes.values()) and before.ipam and before.nat_rules and before.cgroups
        assert len(before.netns_mounts) == len(before.logs) == len(theirs)

        daemon = _pycrio(tmp_path / "pycrio", network, images, gate).start()
        try:
            ours = [
                _run_pod(daemon.client, f"ours-{i}", kubepods, images.busybox, tmp_path) for i in range(2)
            ]
            assert daemon.stop(signal.SIGKILL) != 0
            daemon.start()  # restores its pods and containers
            cut = _kill_during_cni_add(daemon, gate, kubepods, images, tmp_path)
            assert cut in _ipam(network).values()  # host-local gave it an address before the kill
            daemon.start()  # rolls the cut pod back: CNI DEL with its id
            assert cut not in _ipam(network).values()
            assert not [rule for rule in _nat_lines() if cut in rule]
            ours.append(_run_pod(daemon.client, "ours-after", kubepods, images.busybox, tmp_path))
            ours_ids = {pod.id for pod in ours}
            assert ours_ids <= {
                p.id for p in daemon.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
            }
            assert ours_ids & set(_ipam(network).values()) == ours_ids
            _remove_all(daemon.client)
        finally:
            daemon.stop()
            cleanup_run_dir(daemon.workdir / "run")
            unmount_under(daemon.workdir)  # container root file systems a failed run left

        after = _footprint(theirs, network, kubepods)
        assert after == before
        assert connect(address, theirs[0].host_port) == "theirs"
        # And nothing of pycrio's is left on the shared network or in the shared tree.
        assert not (ours_ids | {cut}) & set(_ipam(network).values())
        assert not [rule for rule in _nat_lines() if any(sid in rule for sid in ours_ids)]
        assert not [c for c in _cgroup_dirs(kubepods) if "/podours-" in c]
    finally:
        server.kill()
        server.wait()


# ---- pods --------------------------------------------------------------------------------------------------


def _run_pod(cri: Cri, name: str, parent: str, image: str, tmp_path: Path) -> Pod:
    host_port = free_port()
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace=NAMESPACE),
        # One /var/log/pods for both runtimes, made by whichever comes first; never pre-made here.
        log_directory=str(tmp_path / "pods-logs" / f"{NAMESPACE}_{name}_uid-{name}"),
        port_mappings=[pb.PortMapping(protocol=pb.TCP, container_port=CONTAINER_PORT, host_port=host_port)],
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=f"{parent}/pod{name}"),
    )
    sandbox = cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config), timeout=180).pod_sandbox_id
    cri.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=180)
    container = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="sleeper"),
        image=pb.ImageSpec(image=image),
        command=["sleep", "3600"],
        log_path="sleeper.log",
    )
    create = pb.CreateContainerRequest(pod_sandbox_id=sandbox, config=container, sandbox_config=config)
    container_id = cri.runtime.CreateContainer(create, timeout=180).container_id
    cri.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id), timeout=180)
    pod_info = _verbose(
        cri.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox, verbose=True))
    )
    status = pb.ContainerStatusRequest(container_id=container_id, verbose=True)
    container_info = _verbose(cri.runtime.ContainerStatus(status))
    namespaces = pod_info["runtimeSpec"]["linux"]["namespaces"]
    netns = next(ns["path"] for ns in namespaces if ns["type"] == "network")
    pids = [int(pod_info["pid"]), int(container_info["pid"])]
    log = Path(config.log_directory) / container.log_path
    return Pod(sandbox, name, host_port, netns, log, {pid: process_start_time(pid) or 0 for pid in pids})


def _kill_during_cni_add(daemon: Daemon, gate: Gate, parent: str, images: Images, tmp_path: Path) -> str:
    """SIGKILL the daemon while the gate holds a new pod's CNI ADD; returns that pod's id."""
    gate.closed.touch()
    errors: list[grpc.RpcError] = []

    def run() -> None:
        try:
            _run_pod(daemon.client, "ours-cut", parent, images.busybox, tmp_path)
        except grpc.RpcError as err:
            errors.append(err)

    creating = threading.Thread(target=run)
    creating.start()
    deadline = time.monotonic() + 180
    while not gate.reached.exists():
        assert time.monotonic() < deadline and creating.is_alive(), "the pod's ADD never reached the gate"
        time.sleep(0.05)
    assert daemon.stop(signal.SIGKILL) != 0
    creating.join(60)
    gate.closed.unlink()  # the orphaned plugin finishes; the daemon is gone
    # stop() closes the client's channel first: the call ends CANCELLED, or UNAVAILABLE when the kill wins.
    assert errors and errors[0].code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    return gate.reached.read_text()


def _verbose(reply: Any) -> dict[str, Any]:
    return dict(json.loads(reply.info["info"]))


def _remove_all(cri: Cri) -> None:
    for pod in cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
        cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=180)
        cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=180)


# ---- what is on the host --------------------------------------------------------------------------------


def _footprint(pods: list[Pod], network: HostTestNetwork, kubepods: str) -> Footprint:
    ids = {pod.id for pod in pods}
    processes = {pid: process_start_time(pid) for pod in pods for pid in pod.pids}
    assert all(process_start_time(pid) == start for pod in pods for pid, start in pod.pids.items())
    mountpoints = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
    netns = {pod.netns for pod in pods if os.path.realpath(pod.netns) in mountpoints}  # /var/run is /run
    cgroups = {c for c in _cgroup_dirs(kubepods) if any(f"/pod{pod.name}" in c for pod in pods)}
    ipam = {name: holder for name, holder in _ipam(network).items() if holder in ids}
    logs = {pod.log for pod in pods if pod.log.is_file()}
    return Footprint(processes, netns, cgroups, ipam, _nat_rules_of(ids), logs)


def _cgroup_dirs(parent: str) -> set[str]:
    return set(cgroup_leftovers(parent))


def _ipam(network: HostTestNetwork) -> dict[str, str]:
    """host-local's allocations on the shared network: address file -> the container id it was given to."""
    directory = network.data_dir / network.name
    if not directory.is_dir():
        return {}
    return {
        p.name: p.read_text().splitlines()[0].strip()
        for p in directory.iterdir()
        if re.fullmatch(r"[0-9a-f.:]+", p.name)
    }


def _nat_lines() -> list[str]:
    return subprocess.run(
        ["iptables-save", "-t", "nat"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()


def _nat_rules_of(ids: set[str]) -> set[str]:
    """The NAT rules that name one of `ids`, and every rule of the chains those rules jump to or live in."""
    lines = [line for line in _nat_lines() if line.startswith("-A ")]
    named = {line for line in lines if any(sid in line for sid in ids)}
    chains = set()
    for line in named:
        words = line.split()
        chains.add(words[1])
        if "-j" in words:
            chains.add(words[words.index("-j") + 1])
    chains = {chain for chain in chains if chain.startswith("CNI-") and chain != "CNI-HOSTPORT-DNAT"}
    return named | {line for line in lines if line.split()[1] in chains}
