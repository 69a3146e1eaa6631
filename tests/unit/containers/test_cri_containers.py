"""Protobuf to domain conversion of the container handlers: every field lands, bad values are refused."""

from typing import Any

import pytest

from adapters.cri.containers import container_config, resources
from adapters.cri.generated import api_pb2 as pb
from domain.container_config import NamespaceMode, ProfileType, Propagation, SupplementalGroupsPolicy
from domain.errors import InvalidArgument

# An enum number no proto enum here defines (proto3 enums are open: the wire may carry it).
UNDEFINED: Any = 999


def full_config() -> pb.ContainerConfig:
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="web", attempt=2),
        image=pb.ImageSpec(
            image="busybox", user_specified_image="b", annotations={"i": "3"}, runtime_handler="runc"
        ),
        command=["/bin/sh"],
        args=["-c", "true"],
        working_dir="/srv",
        envs=[pb.KeyValue(key="A", value=b"1")],
        mounts=[
            pb.Mount(
                container_path="/d",
                host_path="/h",
                readonly=True,
                propagation=pb.PROPAGATION_HOST_TO_CONTAINER,
            )
        ],
        devices=[pb.Device(container_path="/dev/x", host_path="/dev/null", permissions="rw")],
        labels={"l": "1"},
        annotations={"a": "2"},
        log_path="web/2.log",
        stdin=True,
        tty=True,
        stop_signal=pb.SIGQUIT,
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(
                cpu_shares=512,
                memory_limit_in_bytes=1 << 26,
                hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=4)],
                unified={"memory.high": "5"},
            ),
            security_context=pb.LinuxContainerSecurityContext(
                capabilities=pb.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["KILL"]),
                namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.TARGET, target_id="t"),
                run_as_user=pb.Int64Value(value=1000),
                run_as_group=pb.Int64Value(value=0),
                readonly_rootfs=True,
                supplemental_groups=[5],
                supplemental_groups_policy=pb.Strict,
                no_new_privs=True,
                seccomp=pb.SecurityProfile(
                    profile_type=pb.SecurityProfile.Localhost, localhost_ref="/p.json"
                ),
            ),
        ),
    )


def test_every_field_is_converted() -> None:
    config = container_config(full_config())
    assert (config.name, config.attempt, config.image) == ("web", 2, "busybox")
    assert (config.user_specified_image, config.image_annotations, config.image_runtime_handler) == (
        "b", {"i": "3"}, "runc",
    )  # fmt: skip
    assert (config.command, config.args, config.working_dir) == (("/bin/sh",), ("-c", "true"), "/srv")
    assert config.envs == (("A", "1"),)
    assert config.mounts[0].propagation is Propagation.HOST_TO_CONTAINER and config.mounts[0].readonly
    assert config.devices[0].permissions == "rw"
    assert (config.tty, config.stdin, config.stop_signal, config.log_path) == (
        True,
        True,
        "SIGQUIT",
        "web/2.log",
    )
    assert config.resources.hugepage_limits[0].page_size == "2MB"
    assert config.resources.unified == (("memory.high", "5"),)
    security = config.security
    assert security.namespace_options.network is NamespaceMode.NODE
    assert security.namespace_options.pid is NamespaceMode.TARGET
    assert (security.run_as_user, security.run_as_group) == (1000, 0)  # 0 is set, not absent
    assert security.supplemental_groups_policy is SupplementalGroupsPolicy.STRICT
    assert security.seccomp is not None and security.seccomp.profile_type is ProfileType.LOCALHOST


def test_absent_optional_fields_stay_absent() -> None:
    config = container_config(pb.ContainerConfig(metadata=pb.ContainerMetadata(name="x")))
    assert config.security.run_as_user is None and config.security.seccomp is None
    assert config.security.namespace_options.pid is NamespaceMode.POD  # the proto's default
    assert config.stop_signal == ""


def test_realtime_signals_are_named_as_the_kernel_does() -> None:
    assert container_config(pb.ContainerConfig(stop_signal=pb.SIGRTMINPLUS3)).stop_signal == "SIGRTMIN+3"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (pb.ContainerConfig(mounts=[pb.Mount(container_path="/x", propagation=UNDEFINED)]), "propagation"),
        (
            pb.ContainerConfig(
                linux=pb.LinuxContainerConfig(
                    security_context=pb.LinuxContainerSecurityContext(
                        namespace_options=pb.NamespaceOption(pid=UNDEFINED)
                    )
                )
            ),
            "namespace_options.pid",
        ),
        (pb.ContainerConfig(stop_signal=UNDEFINED), "stop_signal"),
        (
            pb.ContainerConfig(
                mounts=[pb.Mount(container_path="/x", host_path="/h", image=pb.ImageSpec(image="i"))]
            ),
            "image volume",
        ),
    ],
)
def test_values_the_proto_does_not_define_are_invalid(config: pb.ContainerConfig, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        container_config(config)


def test_image_volume_mounts_convert() -> None:
    config = container_config(
        pb.ContainerConfig(
            mounts=[
                pb.Mount(
                    container_path="/mnt/img",
                    readonly=True,
                    image=pb.ImageSpec(image="app:1"),
                    image_sub_path="etc",
                )
            ]
        )
    )
    (mount,) = config.mounts
    assert (mount.container_path, mount.host_path, mount.image, mount.image_sub_path) == (
        "/mnt/img",
        "",
        "app:1",
        "etc",
    )
    assert mount.readonly


def test_resources_round_numbers() -> None:
    r = resources(pb.LinuxContainerResources(cpu_quota=50000, cpu_period=100000, oom_score_adj=-10))
    assert (r.cpu_quota, r.cpu_period, r.oom_score_adj) == (50000, 100000, -10)
