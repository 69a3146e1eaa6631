"""The daemon as `app` wires it, with the in-memory fakes in place of the host: every CRI RPC served over a
real gRPC socket through the real interceptor, handlers and domain services, in milliseconds per call."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dependency_injector import providers

from app.config import load
from app.container import Container, make_container
from domain.capabilities import capabilities_from_mask
from domain.container_config import ImageConfig
from domain.containers import RuntimeHandler
from domain.oci_spec import HostFacts
from tests.cri_client import CriClient, connect
from tests.fakes.bundles import InMemoryBundles
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.container_monitor import FakeContainerMonitor
from tests.fakes.container_rootfs import FakeContainerRootfs, FakeImage
from tests.fakes.host_files import FakeHostFiles
from tests.fakes.hugepages import FakeHugePages
from tests.fakes.infra import FakeInfraProcesses
from tests.fakes.layer_store import InMemoryLayerStore
from tests.fakes.namespaces import FakeNamespaces
from tests.fakes.network import FakeNetwork
from tests.fakes.oci_runtime import FakeOciRuntime
from tests.fakes.pod_files import FakePodFiles
from tests.fakes.registry import InMemoryRegistry
from tests.fakes.state_store import InMemoryStateStore

IMAGE = "busybox:latest"
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"


@dataclass
class FakeHost:
    """What the fakes hold: after every pod and container is removed, all of it must be empty."""

    store: InMemoryStateStore
    network: FakeNetwork
    namespaces: FakeNamespaces
    infra: FakeInfraProcesses
    files: FakePodFiles
    rootfs: FakeContainerRootfs
    bundles: InMemoryBundles
    runtime: FakeOciRuntime

    def leftovers(self) -> dict[str, object]:
        found: dict[str, object] = {
            "network": self.network.attached,
            "namespaces": self.namespaces.pinned,
            "infra": self.infra.running,
            "pod files": self.files.files,
            "shm": self.files.shm_mounts,
            "log directories": self.files.log_directories,
            "rootfs": self.rootfs.rootfs,
            "bundles": self.bundles.specs,
            "runtime": self.runtime.machine.containers,
            "sandbox records": self.store.list("sandboxes"),
            "container records": self.store.list("containers"),
        }
        return {name: value for name, value in found.items() if value}


@contextmanager
def fake_daemon(work: Path) -> Iterator[tuple[CriClient, FakeHost, Container]]:
    socket = work / "cri.sock"
    config = load(
        None,
        overrides=[
            f'runtime.root="{work / "root"}"',
            f'runtime.run_dir="{work / "run"}"',
            f'grpc.listen="unix://{socket}"',
            'streaming.address="127.0.0.1"',
            "streaming.port=0",
        ],
    )
    bundles = InMemoryBundles()
    host = FakeHost(
        store=InMemoryStateStore(),
        network=FakeNetwork(),
        namespaces=FakeNamespaces(),
        infra=FakeInfraProcesses(),
        files=FakePodFiles(),
        rootfs=FakeContainerRootfs(),
        bundles=bundles,
        runtime=FakeOciRuntime(read_spec=bundles.read),
    )
    host.rootfs.add_image(FakeImage("img1", (IMAGE,), ImageConfig(cmd=("/bin/sh",)), {"/etc/passwd": PASSWD}))
    container = make_container(config)
    fakes: dict[str, object] = {
        "state_store": host.store,
        "network": host.network,
        "namespaces": host.namespaces,
        "infra": host.infra,
        "pod_files": host.files,
        "cgroups": FakeCgroups(),
        "hugepages": FakeHugePages(),
        "registry": InMemoryRegistry(),
        "layer_store": InMemoryLayerStore(),
        "container_rootfs": host.rootfs,
        "host_files": FakeHostFiles(paths={"/data": "/data"}),
        "bundles": host.bundles,
        "container_monitor": FakeContainerMonitor(host.runtime),
        "runtime_handlers": {"runc": RuntimeHandler(host.runtime)},
        "host_facts": HostFacts(
            bounding_capabilities=capabilities_from_mask(0x1FFFEFFFFFF), min_oom_score_adj=0
        ),
    }
    for name, fake in fakes.items():
        getattr(container, name).override(providers.Object(fake))
    streaming = container.streaming_server()
    streaming.start()
    server = container.server()
    server.start()
    client = connect(socket)
    try:
        yield client, host, container
    finally:
        client.close()
        server.stop(1)
        streaming.stop()
