"""SandboxLookup over the real sandbox service (with the pods area's fakes): the facts a container gets."""

import pytest

from adapters.containers.pod_containers import ServicePodContainers
from adapters.containers.sandbox_lookup import SandboxServiceLookup
from domain.errors import FailedPrecondition, NotFound
from domain.sandbox_model import NamespaceMode, NamespaceOptions, SandboxConfig, SandboxMetadata
from domain.sandboxes import SandboxService, SandboxSettings
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.hugepages import FakeHugePages
from tests.fakes.infra import FakeInfraProcesses
from tests.fakes.namespaces import FakeNamespaces
from tests.fakes.network import FakeNetwork
from tests.fakes.pod_files import FakePodFiles
from tests.fakes.state_store import InMemoryStateStore


def make_sandboxes() -> SandboxService:
    settings = SandboxSettings(runtimes=("runc", "crun"), node_hostname="node-1")
    return SandboxService(
        InMemoryStateStore(),
        FakeNetwork(),
        FakeNamespaces(),
        FakeInfraProcesses(),
        FakePodFiles(),
        FakeCgroups(),
        ServicePodContainers(),
        settings,
        FakeHugePages(),
    )


def test_facts_of_a_ready_pod() -> None:
    sandboxes = make_sandboxes()
    config = SandboxConfig(
        metadata=SandboxMetadata(name="web", uid="u1", namespace="prod"),
        hostname="web-0",
        log_directory="/var/log/pods/u1",
        sysctls={"net.ipv4.ip_forward": "1"},
    )
    sandbox_id = sandboxes.run(config, runtime_handler="crun")
    facts = SandboxServiceLookup(sandboxes).sandbox_facts(sandbox_id[:12])
    pod = sandboxes.get(sandbox_id)
    assert (facts.id, facts.name, facts.namespace, facts.uid) == (sandbox_id, "web", "prod", "u1")
    assert facts.hostname == "web-0" and facts.runtime_handler == "crun"
    assert facts.netns_path == pod.namespaces.network and facts.netns_path
    assert facts.ipc_ns_path == pod.namespaces.ipc and facts.uts_ns_path == pod.namespaces.uts
    assert facts.pid_ns_path == pod.pid_namespace and facts.pid_ns_path
    assert pod.files is not None and facts.hosts_path == pod.files.hosts and facts.shm_path == pod.files.shm
    assert facts.cgroup_parent == pod.cgroup_parent and facts.log_directory == "/var/log/pods/u1"
    assert facts.sysctls == (("net.ipv4.ip_forward", "1"),)


def test_host_namespaces_and_missing_or_stopped_pods() -> None:
    sandboxes = make_sandboxes()
    options = NamespaceOptions(
        network=NamespaceMode.NODE, pid=NamespaceMode.CONTAINER, ipc=NamespaceMode.NODE
    )
    config = SandboxConfig(
        metadata=SandboxMetadata(name="h", uid="u2", namespace="n"), namespace_options=options
    )
    sandbox_id = sandboxes.run(config, runtime_handler="")
    lookup = SandboxServiceLookup(sandboxes)
    facts = lookup.sandbox_facts(sandbox_id)
    assert facts.host_network and facts.host_ipc
    assert facts.netns_path == "" and facts.pid_ns_path == ""
    sandboxes.stop(sandbox_id)
    with pytest.raises(FailedPrecondition):
        lookup.sandbox_facts(sandbox_id)
    with pytest.raises(NotFound):
        lookup.sandbox_facts("0123456789ab")
