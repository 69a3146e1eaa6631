"""The daemon's real composition root (app/container.py) with every host adapter replaced by its fake.

The domain services and the glue between them (app/links) are the real ones, so contract suites can run
the glue adapters (PodContainers, SandboxLookup, StreamTargets, WorkloadInventory) against their fakes.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from dependency_injector import providers

from app.config import load
from app.container import Container, make_container
from domain.capabilities import capabilities_from_mask
from domain.container_config import ContainerConfig, ImageConfig
from domain.containers import RuntimeHandler
from domain.oci_spec import HostFacts
from domain.sandbox_model import SandboxConfig, SandboxMetadata
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
from tests.fakes.state_store import InMemoryStateStore

IMAGE = "busybox:latest"


@dataclass
class FakeNode:
    container: Container
    runtime: FakeOciRuntime
    infra: FakeInfraProcesses
    log_directory: Path
    fakes: dict[str, object]

    def run_pod(self, name: str) -> str:
        config = SandboxConfig(
            metadata=SandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"),
            log_directory=str(self.log_directory / name),
        )
        sandbox_id: str = self.container.sandboxes().run(config)
        return sandbox_id

    def create(self, pod_id: str, name: str, stdin: bool = False, tty: bool = False) -> str:
        config = ContainerConfig(
            name=name,
            image=IMAGE,
            command=("/bin/sh", "-c", "sleep 1000"),
            log_path=f"{name}/0.log",
            stdin=stdin,
            tty=tty,
        )
        container_id: str = self.container.container_service().create(pod_id, config)
        return container_id


def fake_node(tmp_path: Path, restart_of: FakeNode | None = None) -> FakeNode:
    """A node of fakes; with `restart_of`, the daemon restarted on that node (its fakes: the same state
    store, processes and files)."""
    config = load(
        None, overrides=[f'runtime.root="{tmp_path / "root"}"', f'runtime.run_dir="{tmp_path}/run"']
    )
    node = make_container(config)
    if restart_of is not None:
        for name, fake in restart_of.fakes.items():
            getattr(node, name).override(providers.Object(fake))
        return replace(restart_of, container=node)
    bundles = InMemoryBundles()
    runtime = FakeOciRuntime(read_spec=bundles.read)
    infra = FakeInfraProcesses()
    rootfs = FakeContainerRootfs()
    rootfs.add_image(
        FakeImage("img1", (IMAGE,), ImageConfig(cmd=("/bin/sh",)), {"/etc/passwd": "root:x:0:0::/:"})
    )
    host = HostFacts(bounding_capabilities=capabilities_from_mask(0x1FFFEFFFFFF), min_oom_score_adj=0)
    fakes: dict[str, object] = {
        "state_store": InMemoryStateStore(),
        "network": FakeNetwork(),
        "namespaces": FakeNamespaces(),
        "infra": infra,
        "pod_files": FakePodFiles(),
        "cgroups": FakeCgroups(),
        "hugepages": FakeHugePages(),
        "layer_store": InMemoryLayerStore(),
        "bundles": bundles,
        "container_monitor": FakeContainerMonitor(runtime),
        "host_files": FakeHostFiles(),
        "host_facts": host,
        "container_rootfs": rootfs,
        "runtime_handlers": {"runc": RuntimeHandler(runtime)},
    }
    for name, fake in fakes.items():
        getattr(node, name).override(providers.Object(fake))
    return FakeNode(node, runtime, infra, tmp_path / "logs", fakes)
