"""Every string of a CRI request, however deep (repeated messages, maps), is checked for NUL bytes; every
enum for a number the API defines."""

import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.request_fields import check_request_fields
from domain.errors import InvalidArgument


def _create(**config: object) -> pb.CreateContainerRequest:
    return pb.CreateContainerRequest(
        pod_sandbox_id="abc",
        config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), **config),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        (_create(envs=[pb.KeyValue(key="A", value=b"1"), pb.KeyValue(key="B", value=b"x\0y")]),
         r"config.envs\[1\].value"),
        (_create(working_dir="/tmp\0/x"), "config.working_dir"),
        (_create(log_path="a\0.log"), "config.log_path"),
        (_create(command=["/bin/sh", "\0"]), r"config.command\[1\]"),
        (_create(devices=[pb.Device(host_path="/dev/null\0")]), r"config.devices\[0\].host_path"),
        (_create(labels={"k\0": "v"}), "config.labels key"),
        (_create(annotations={"k": "v\0"}), r"config.annotations\['k'\]"),
        (_create(linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(unified={"a": "\0"}))),
         r"config.linux.resources.unified\['a'\]"),
        (pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(log_directory="/var/log/\0")),
         "config.log_directory"),
        (pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="a\0"))),
         "config.metadata.name"),
        (pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
            linux=pb.LinuxPodSandboxConfig(cgroup_parent="/k\0")
        )), "config.linux.cgroup_parent"),
    ],
)  # fmt: skip
def test_nul_is_refused_naming_the_field(request_message: object, field: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{field}: must not contain a NUL byte"):
        check_request_fields(request_message)  # type: ignore[arg-type]


def test_clean_requests_pass() -> None:
    check_request_fields(_create(envs=[pb.KeyValue(key="A", value="ünï ☃".encode())], labels={"a": "b"}))
    check_request_fields(pb.ListContainersRequest())


def _pod(**linux: object) -> pb.RunPodSandboxRequest:
    return pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(linux=pb.LinuxPodSandboxConfig(**linux)))  # type: ignore[arg-type]


def _pod_security(**fields: object) -> pb.RunPodSandboxRequest:
    return _pod(security_context=pb.LinuxSandboxSecurityContext(**fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        # Found by the enum sweep: RunPodSandbox ran a pod network namespace for `network: 99`.
        (_pod_security(namespace_options=pb.NamespaceOption(network=99)),  # type: ignore[arg-type]
         "config.linux.security_context.namespace_options.network: 99 is not a defined NamespaceMode"),
        (_pod_security(namespace_options=pb.NamespaceOption(pid=-1)),  # type: ignore[arg-type]
         "config.linux.security_context.namespace_options.pid: -1 is not a defined NamespaceMode"),
        (_pod_security(seccomp=pb.SecurityProfile(profile_type=99)),  # type: ignore[arg-type]
         "config.linux.security_context.seccomp.profile_type: 99 is not a defined ProfileType"),
        (pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(port_mappings=[pb.PortMapping(protocol=99)])),  # type: ignore[arg-type]
         r"config.port_mappings\[0\].protocol: 99 is not a defined Protocol"),
        (_create(mounts=[pb.Mount(), pb.Mount(propagation=99)]),  # type: ignore[arg-type]
         r"config.mounts\[1\].propagation: 99 is not a defined MountPropagation"),
        # Fields a handler never reads are refused too: a copy of the pod's config is no place for junk.
        (pb.CreateContainerRequest(sandbox_config=pb.PodSandboxConfig(
            windows=pb.WindowsPodSandboxConfig(security_context=pb.WindowsSandboxSecurityContext(
                namespace_options=pb.WindowsNamespaceOption(network=99))))),  # type: ignore[arg-type]
         "sandbox_config.windows.security_context.namespace_options.network: 99 is not a defined "
         "NamespaceMode"),
        (pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=99))),  # type: ignore[arg-type]
         "filter.state.state: 99 is not a defined PodSandboxState"),
    ],
)  # fmt: skip
def test_an_undefined_enum_number_is_refused_naming_the_field(request_message: object, field: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{field}$"):
        check_request_fields(request_message)  # type: ignore[arg-type]


def test_every_defined_enum_number_passes() -> None:
    for mode in pb.NamespaceMode.values():
        options = pb.NamespaceOption(network=mode, pid=mode, ipc=mode)  # type: ignore[arg-type]
        check_request_fields(_pod_security(namespace_options=options))
