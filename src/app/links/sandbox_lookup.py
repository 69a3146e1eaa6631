"""SandboxLookup over the pods area's SandboxService: a pod's facts as a container needs them."""

from domain.container_config import SandboxFacts
from domain.errors import FailedPrecondition
from domain.sandbox_model import SandboxState
from domain.sandboxes import SandboxService


class SandboxServiceLookup:
    def __init__(self, sandboxes: SandboxService) -> None:
        self._sandboxes = sandboxes

    def sandbox_facts(self, sandbox_id: str) -> SandboxFacts:
        sb = self._sandboxes.get(sandbox_id)
        if sb.state is not SandboxState.READY:
            raise FailedPrecondition(f"pod sandbox {sb.id} is not ready")
        files = sb.files
        options = sb.config.namespace_options
        metadata = sb.config.metadata
        return SandboxFacts(
            id=sb.id,
            name=metadata.name,
            namespace=metadata.namespace,
            uid=metadata.uid,
            hostname=sb.hostname,
            netns_path=sb.namespaces.network,
            ipc_ns_path=sb.namespaces.ipc,
            uts_ns_path=sb.namespaces.uts,
            pid_ns_path=sb.pid_namespace,
            hostname_path=files.hostname if files else "",
            hosts_path=files.hosts if files else "",
            resolv_conf_path=files.resolv_conf if files else "",
            shm_path=files.shm if files else "",
            cgroup_parent=sb.cgroup_parent,
            runtime_handler=sb.oci_runtime,
            log_directory=sb.config.log_directory,
            privileged=sb.config.privileged,
            sysctls=tuple(sorted(sb.config.sysctls.items())),
            host_network=options.host_network,
            host_ipc=options.host_ipc,
            annotations=tuple(sorted(sb.config.annotations.items())),
            userns_path=sb.namespaces.user,
            user_namespace=sb.config.user_namespace,
        )
