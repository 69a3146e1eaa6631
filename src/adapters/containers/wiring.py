"""Builds the containers service from the configuration: one OCI runtime per handler, conmon, host facts.

Kept out of app/container.py so that the wiring there stays one provider per service.
"""

from pathlib import Path

from adapters.conmon.monitor import ConmonMonitor
from adapters.containers.image_rootfs import ImageServiceRootfs
from adapters.containers.pod_containers import ServicePodContainers
from adapters.containers.sandbox_lookup import SandboxServiceLookup
from adapters.extensions.cdi_spec_dirs import DirectoryCdiSpecs
from adapters.extensions.hook_dirs import DirectoryOciHooks
from adapters.host.bundles import DirectoryBundles
from adapters.host.facts import read_host_facts
from adapters.host.files import RealHostFiles
from adapters.runc.runtime import RuncRuntime
from app.config import Config
from domain.containers import ContainerService, RuntimeHandler
from domain.images import ImageService
from domain.sandboxes import SandboxService
from ports.hugepages import HugePages
from ports.state_store import StateStore


def build_container_service(
    config: Config,
    store: StateStore,
    sandboxes: SandboxService,
    images: ImageService,
    pod_containers: ServicePodContainers,
    hugepages: HugePages,
) -> ContainerService:
    run_dir = Path(config.runtime.run_dir)
    systemd = config.runtime.cgroup_driver == "systemd"
    runtimes = {
        name: RuntimeHandler(
            RuncRuntime(
                handler.path,
                handler.root or str(run_dir / name),
                timeout=config.runtime.subprocess_timeout,
                systemd_cgroup=systemd,
            ),
            systemd_cgroup=systemd,
        )
        for name, handler in config.runtime.runtimes.items()
    }
    cdi_specs = DirectoryCdiSpecs(config.runtime.cdi_spec_dirs)
    oci_hooks = DirectoryOciHooks(config.runtime.hooks_dir)
    # Read once now so that broken spec and hook files are logged at start-up, not at the first create.
    cdi_specs.load()
    oci_hooks.load()
    service = ContainerService(
        store=store,
        sandboxes=SandboxServiceLookup(sandboxes),
        rootfs=ImageServiceRootfs(images),
        host_files=RealHostFiles(),
        bundles=DirectoryBundles(run_dir / "containers"),
        monitor=ConmonMonitor(
            config.runtime.conmon,
            persist_root=run_dir / "conmon",
            exits_dir=run_dir / "exits",
            sockets_dir=run_dir / "attach",
        ),
        runtimes=runtimes,
        default_runtime=config.runtime.default_runtime,
        host=read_host_facts(config.runtime.cgroup_driver),
        hugepages=hugepages,
        create_timeout=config.runtime.subprocess_timeout,
        cdi_specs=cdi_specs,
        oci_hooks=oci_hooks,
        log_size_max=config.runtime.log_size_max,
    )
    service.restore()
    pod_containers.bind(service)
    return service
