"""Every string of a CRI request, however deep (repeated messages, maps), is checked for NUL bytes."""

import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.request_strings import check_request_strings
from domain.errors import InvalidArgument


def _create(**config: object) -> pb.CreateContainerRequest:
    return pb.CreateContainerRequest(
        pod_sandbox_id="abc",
        config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), **config),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        (_create(envs=[pb.KeyValue(key="A", value="1"), pb.KeyValue(key="B", value="x\0y")]),
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
        check_request_strings(request_message)  # type: ignore[arg-type]


def test_clean_requests_pass() -> None:
    check_request_strings(_create(envs=[pb.KeyValue(key="A", value="ünï ☃")], labels={"a": "b"}))
    check_request_strings(pb.ListContainersRequest())
