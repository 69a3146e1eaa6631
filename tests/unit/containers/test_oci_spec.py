"""The OCI spec builder: every CRI ContainerConfig field lands in the right place of config.json."""

import dataclasses
from typing import Any

import pytest

from domain.capabilities import ALL_CAPABILITIES, DEFAULT_CAPABILITIES, capabilities_from_mask
from domain.container_config import (
    ContainerConfig,
    Device,
    HugepageLimit,
    ImageConfig,
    Mount,
    NamespaceMode,
    NamespaceOptions,
    ProfileType,
    Propagation,
    Resources,
    SandboxFacts,
    SecurityContext,
    SecurityProfile,
    SupplementalGroupsPolicy,
)
from domain.errors import InvalidArgument
from domain.id_mappings import IdMapping, UserNamespace
from domain.oci_spec import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    HostDevice,
    HostFacts,
    SpecInputs,
    build_spec,
    process_args,
    stop_signal,
)

# Root's bounding set on this kind of machine: everything but CAP_SYS_RESOURCE.
HOST = HostFacts(
    bounding_capabilities=capabilities_from_mask(0x1FFFEFFFFFF),
    min_oom_score_adj=0,
    hugepage_sizes=frozenset({"2MB", "1GB"}),
)
PASSWD = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nnobody:x:65534:65534::/:/x\n"
GROUP = "root:x:0:\nwww:x:33:\nstaff:x:50:www,other\naudio:x:29:www\nnogroup:x:65534:\n"
SANDBOX = SandboxFacts(
    id="sb1",
    name="pod",
    namespace="default",
    uid="u1",
    hostname="pod-host",
    netns_path="/run/netns/pcctr-1",
    ipc_ns_path="/proc/10/ns/ipc",
    uts_ns_path="/proc/10/ns/uts",
    pid_ns_path="/proc/10/ns/pid",
    hostname_path="/run/sb1/hostname",
    hosts_path="/run/sb1/hosts",
    resolv_conf_path="/run/sb1/resolv.conf",
    shm_path="/run/sb1/shm",
    cgroup_parent="/pycrio-test-containers/pod1",
)


def inputs(config: ContainerConfig | None = None, **changes: Any) -> SpecInputs:
    base = SpecInputs(
        container_id="c1",
        config=config or ContainerConfig(name="ctr", command=("/bin/true",)),
        image=ImageConfig(),
        image_name="busybox:latest",
        sandbox=SANDBOX,
        host=HOST,
        rootfs="/var/lib/pycrio/c1/rootfs",
        passwd=PASSWD,
        group=GROUP,
    )
    return dataclasses.replace(base, **changes)


def security(**fields: Any) -> ContainerConfig:
    return ContainerConfig(name="ctr", command=("/bin/true",), security=SecurityContext(**fields))


def spec_of(config: ContainerConfig | None = None, **changes: Any) -> dict[str, Any]:
    return build_spec(inputs(config, **changes))


def invalid(match: str, config: ContainerConfig | None = None, **changes: Any) -> None:
    with pytest.raises(InvalidArgument, match=match):
        build_spec(inputs(config, **changes))


# --- command, env, cwd ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args", "entrypoint", "cmd", "expected"),
    [
        ((), (), ("/ep",), ("a",), ["/ep", "a"]),
        ((), ("x",), ("/ep",), ("a",), ["/ep", "x"]),
        (("/c",), (), ("/ep",), ("a",), ["/c"]),
        (("/c",), ("x",), ("/ep",), ("a",), ["/c", "x"]),
        ((), (), (), ("/bin/sh",), ["/bin/sh"]),
        ((), (), ("",), ("/bin/sh",), ["/bin/sh"]),
        ((), ("/bin/echo",), (), ("/bin/sh",), ["/bin/echo"]),
    ],
)
def test_command_merges_with_the_image_like_the_kubelet_expects(
    command: tuple[str, ...],
    args: tuple[str, ...],
    entrypoint: tuple[str, ...],
    cmd: tuple[str, ...],
    expected: list[str],
) -> None:
    config = ContainerConfig(name="c", command=command, args=args)
    assert process_args(config, ImageConfig(entrypoint=entrypoint, cmd=cmd)) == expected


def test_no_command_anywhere_is_invalid() -> None:
    invalid("command", ContainerConfig(name="c"))


def test_env_image_then_cri_and_defaults() -> None:
    config = ContainerConfig(name="c", command=("/x",), envs=(("A", "cri"), ("B", "2")))
    spec = spec_of(config, image=ImageConfig(env=("A=image", "PATH=/bin", "C=3")))
    env = spec["process"]["env"]
    assert env[:3] == ["A=cri", "PATH=/bin", "C=3"]
    assert "B=2" in env
    assert "HOSTNAME=pod-host" in env
    assert "HOME=/root" in env


def test_default_path_when_image_has_none() -> None:
    assert any(e.startswith("PATH=/usr/local/sbin") for e in spec_of()["process"]["env"])


def test_bad_env_key_names_the_field() -> None:
    invalid(r"envs\[0\].key", ContainerConfig(name="c", command=("/x",), envs=(("A=B", "1"),)))


def test_working_dir_cri_then_image_then_root() -> None:
    assert spec_of()["process"]["cwd"] == "/"
    assert spec_of(image=ImageConfig(working_dir="/srv"))["process"]["cwd"] == "/srv"
    config = ContainerConfig(name="c", command=("/x",), working_dir="/tmp")
    assert spec_of(config, image=ImageConfig(working_dir="/srv"))["process"]["cwd"] == "/tmp"
    invalid("working_dir", ContainerConfig(name="c", command=("/x",), working_dir="rel"))


def test_stop_signal_cri_then_image_then_sigterm() -> None:
    assert stop_signal(ContainerConfig(name="c"), ImageConfig()) == "SIGTERM"
    assert stop_signal(ContainerConfig(name="c"), ImageConfig(stop_signal="SIGQUIT")) == "SIGQUIT"
    assert stop_signal(ContainerConfig(name="c"), ImageConfig(stop_signal="9")) == "SIGKILL"
    assert (
        stop_signal(ContainerConfig(name="c", stop_signal="SIGUSR1"), ImageConfig(stop_signal="9"))
        == "SIGUSR1"
    )
    with pytest.raises(InvalidArgument, match="image STOPSIGNAL"):
        stop_signal(ContainerConfig(name="c"), ImageConfig(stop_signal="SIGNOPE"))


@pytest.mark.parametrize(
    ("asked", "named"),
    [
        ("SIGRTMIN+1", "SIGRTMIN+1"),  # the CRI's SIGRTMINPLUS1 as the handlers spell it
        ("RTMIN+3", "SIGRTMIN+3"),
        ("SIGRTMAX-1", "SIGRTMIN+29"),  # docker's STOPSIGNAL spelling
        ("sigrtmax-14", "SIGRTMIN+16"),
        ("SIGRTMIN+0", "SIGRTMIN"),
        ("SIGRTMAX-0", "SIGRTMAX"),
        ("35", "SIGRTMIN+1"),
        ("64", "SIGRTMAX"),
        ("15", "SIGTERM"),
    ],
)
def test_stop_signal_real_time_spellings(asked: str, named: str) -> None:
    assert stop_signal(ContainerConfig(name="c"), ImageConfig(stop_signal=asked)) == named


@pytest.mark.parametrize("asked", ["32", "33", "0", "65", "SIGRTMIN+31", "SIGRTMAX-31", "SIGRTMIN+", "099"])
def test_stop_signals_the_kernel_does_not_give_are_refused(asked: str) -> None:
    """32 and 33 are the C library's own; nothing past SIGRTMAX."""
    with pytest.raises(InvalidArgument, match="stop_signal: unknown signal"):
        stop_signal(ContainerConfig(name="c", stop_signal=asked), ImageConfig())


def test_tty_sets_terminal() -> None:
    assert spec_of(ContainerConfig(name="c", command=("/x",), tty=True))["process"]["terminal"] is True


# --- user ------------------------------------------------------------------------------------------------


def user_of(config: ContainerConfig, image_user: str = "") -> dict[str, Any]:
    spec = spec_of(config, image=ImageConfig(user=image_user))
    user: dict[str, Any] = spec["process"]["user"]
    return user


def test_default_user_is_root_with_its_groups() -> None:
    assert user_of(security()) == {"uid": 0, "gid": 0, "additionalGids": [0]}


def test_run_as_username_resolves_uid_gid_and_group_memberships() -> None:
    assert user_of(security(run_as_username="www")) == {"uid": 33, "gid": 33, "additionalGids": [33, 50, 29]}


def test_run_as_user_number_uses_the_passwd_entry_when_there_is_one() -> None:
    assert user_of(security(run_as_user=33))["gid"] == 33
    assert user_of(security(run_as_user=1234)) == {"uid": 1234, "gid": 0, "additionalGids": [0]}


def test_run_as_group_overrides_and_needs_a_user() -> None:
    assert user_of(security(run_as_user=33, run_as_group=7))["gid"] == 7
    invalid("run_as_group", security(run_as_group=7))


def test_run_as_user_and_username_together_are_invalid() -> None:
    invalid("run_as_user and run_as_username", security(run_as_user=1, run_as_username="www"))


def test_unknown_username_is_invalid() -> None:
    invalid("run_as_username: user 'ghost'", security(run_as_username="ghost"))


@pytest.mark.parametrize(
    ("image_user", "uid", "gid"),
    [
        ("www", 33, 33),
        ("33", 33, 33),
        ("www:staff", 33, 50),
        ("1000:1000", 1000, 1000),
        ("nobody", 65534, 65534),
    ],
)
def test_image_user_forms(image_user: str, uid: int, gid: int) -> None:
    user = user_of(security(), image_user)
    assert (user["uid"], user["gid"]) == (uid, gid)


def test_image_user_with_unknown_group_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="image USER: group 'ghosts'"):
        build_spec(inputs(security(), image=ImageConfig(user="www:ghosts")))


def test_supplemental_groups_merge_and_strict() -> None:
    merged = user_of(security(run_as_username="www", supplemental_groups=(1000, 50)))
    assert merged["additionalGids"] == [33, 50, 29, 1000]
    strict = user_of(
        security(
            run_as_username="www",
            supplemental_groups=(1000,),
            supplemental_groups_policy=SupplementalGroupsPolicy.STRICT,
        )
    )
    assert strict["additionalGids"] == [33, 1000]


# --- mounts ----------------------------------------------------------------------------------------------


def mounts_config(*mounts: Mount, **fields: Any) -> ContainerConfig:
    return ContainerConfig(name="c", command=("/x",), mounts=mounts, security=SecurityContext(**fields))


def by_destination(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["destination"]: m for m in spec["mounts"]}


def test_default_and_sandbox_mounts() -> None:
    mounts = by_destination(spec_of())
    assert {"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm"} <= set(mounts)
    assert mounts["/dev/shm"]["source"] == "/run/sb1/shm"
    assert mounts["/etc/hosts"]["source"] == "/run/sb1/hosts"
    assert mounts["/etc/resolv.conf"]["source"] == "/run/sb1/resolv.conf"
    assert mounts["/etc/hostname"]["source"] == "/run/sb1/hostname"
    assert "ro" in mounts["/sys"]["options"]


def test_bind_mount_propagation_modes() -> None:
    config = mounts_config(
        Mount("/a", "/host/a"),
        Mount("/b", "/host/b", propagation=Propagation.HOST_TO_CONTAINER),
        Mount("/c", "/host/c", readonly=True, propagation=Propagation.BIDIRECTIONAL),
    )
    sources = {"/host/a": "/host/a", "/host/b": "/real/b", "/host/c": "/host/c"}
    spec = spec_of(config, mount_sources=sources)
    mounts = by_destination(spec)
    assert mounts["/a"]["options"] == ["rbind", "rprivate", "rw"]
    assert mounts["/b"] == {"destination": "/b", "type": "bind", "source": "/real/b",
                            "options": ["rbind", "rslave", "rw"]}  # fmt: skip
    assert mounts["/c"]["options"] == ["rbind", "rshared", "ro"]
    assert spec["linux"]["rootfsPropagation"] == "rshared"


def test_rslave_rootfs_propagation_for_host_to_container_only() -> None:
    config = mounts_config(Mount("/b", "/host/b", propagation=Propagation.HOST_TO_CONTAINER))
    assert spec_of(config, mount_sources={"/host/b": "/host/b"})["linux"]["rootfsPropagation"] == "rslave"
    assert "rootfsPropagation" not in spec_of()["linux"]


def test_recursive_read_only() -> None:
    ok = mounts_config(Mount("/a", "/h", readonly=True, recursive_read_only=True))
    assert by_destination(spec_of(ok, mount_sources={"/h": "/h"}))["/a"]["options"][-1] == "rro"
    invalid(r"mounts\[0\].recursive_read_only: needs readonly",
            mounts_config(Mount("/a", "/h", recursive_read_only=True)),
            mount_sources={"/h": "/h"})  # fmt: skip
    not_private = Mount(
        "/a", "/h", readonly=True, recursive_read_only=True, propagation=Propagation.BIDIRECTIONAL
    )
    invalid("needs propagation PRIVATE", mounts_config(not_private), mount_sources={"/h": "/h"})


def test_missing_host_path_and_relative_container_path_are_invalid() -> None:
    invalid(r"mounts\[0\].host_path: '/nope' does not exist", mounts_config(Mount("/a", "/nope")))
    invalid(r"mounts\[0\].container_path", mounts_config(Mount("a", "/h")), mount_sources={"/h": "/h"})


def test_cri_mount_replaces_the_sandbox_default_at_the_same_path() -> None:
    spec = spec_of(
        mounts_config(Mount("/etc/hosts", "/kubelet/hosts")), mount_sources={"/kubelet/hosts": "/k"}
    )
    hosts = [m for m in spec["mounts"] if m["destination"] == "/etc/hosts"]
    assert hosts == [{"destination": "/etc/hosts", "type": "bind", "source": "/k",
                      "options": ["rbind", "rprivate", "rw"]}]  # fmt: skip


def test_readonly_rootfs_makes_root_and_sandbox_files_readonly() -> None:
    spec = spec_of(security(readonly_rootfs=True))
    assert spec["root"] == {"path": "/var/lib/pycrio/c1/rootfs", "readonly": True}
    assert "ro" in by_destination(spec)["/etc/hosts"]["options"]


def test_host_ipc_binds_the_host_shm() -> None:
    config = security(namespace_options=NamespaceOptions(ipc=NamespaceMode.NODE))
    assert by_destination(spec_of(config))["/dev/shm"]["source"] == "/dev/shm"


# --- devices ---------------------------------------------------------------------------------------------


def test_devices_become_nodes_and_cgroup_rules() -> None:
    config = ContainerConfig(name="c", command=("/x",), devices=(Device("/dev/mydev", "/dev/null", "rw"),))
    spec = spec_of(config, devices={"/dev/null": HostDevice("/dev/null", "c", 1, 3)})
    assert spec["linux"]["devices"] == [
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0}
    ]
    assert spec["linux"]["resources"]["devices"] == [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
    ]


def test_bad_devices_are_invalid() -> None:
    invalid(
        r"devices\[0\].host_path", ContainerConfig(name="c", command=("/x",), devices=(Device("/d", "/x"),))
    )
    bad_perm = ContainerConfig(name="c", command=("/x",), devices=(Device("/d", "/dev/null", "rx"),))
    invalid(r"devices\[0\].permissions", bad_perm, devices={"/dev/null": HostDevice("/dev/null", "c", 1, 3)})


# --- namespaces ------------------------------------------------------------------------------------------


def ns_of(**options: Any) -> list[dict[str, str]]:
    namespaces: list[dict[str, str]] = spec_of(security(namespace_options=NamespaceOptions(**options)))[
        "linux"
    ]["namespaces"]
    return namespaces


def test_pod_namespaces_join_the_sandbox() -> None:
    assert ns_of(pid=NamespaceMode.POD) == [
        {"type": "mount"},
        {"type": "network", "path": "/run/netns/pcctr-1"},
        {"type": "uts", "path": "/proc/10/ns/uts"},
        {"type": "ipc", "path": "/proc/10/ns/ipc"},
        {"type": "pid", "path": "/proc/10/ns/pid"},
    ]


def test_container_pid_and_host_namespaces() -> None:
    namespaces = ns_of(network=NamespaceMode.NODE, ipc=NamespaceMode.NODE, pid=NamespaceMode.CONTAINER)
    assert namespaces == [{"type": "mount"}, {"type": "pid"}]
    assert {"type": "pid"} not in ns_of(pid=NamespaceMode.NODE)
    assert "hostname" not in spec_of(security(namespace_options=NamespaceOptions(network=NamespaceMode.NODE)))
    assert spec_of()["hostname"] == "pod-host"


def test_containers_of_host_network_and_host_ipc_pods_share_the_hosts_namespaces() -> None:
    """A container asking for the pod's network and IPC (the CRI default) gets the host's when the pod has
    them, as with cri-o and containerd; it cannot be told it has no namespace to join."""
    host_pod = dataclasses.replace(
        SANDBOX, host_network=True, host_ipc=True, netns_path="", uts_ns_path="", ipc_ns_path="", shm_path=""
    )
    config = security(namespace_options=NamespaceOptions(network=NamespaceMode.POD, ipc=NamespaceMode.POD))
    spec = spec_of(config, sandbox=host_pod)
    assert spec["linux"]["namespaces"] == [{"type": "mount"}, {"type": "pid"}]
    assert "hostname" not in spec
    shm = [m["source"] for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == ["/dev/shm"]
    only_host_network = dataclasses.replace(SANDBOX, host_network=True, netns_path="", uts_ns_path="")
    namespaces = spec_of(config, sandbox=only_host_network)["linux"]["namespaces"]
    assert [n["type"] for n in namespaces] == ["mount", "ipc", "pid"]


def test_target_pid_namespace() -> None:
    config = security(namespace_options=NamespaceOptions(pid=NamespaceMode.TARGET, target_id="other"))
    namespaces = spec_of(config, target_pid_ns_path="/proc/77/ns/pid")["linux"]["namespaces"]
    assert {"type": "pid", "path": "/proc/77/ns/pid"} in namespaces
    invalid("target_id", config)


def test_unsupported_namespace_modes_are_invalid() -> None:
    invalid(
        "namespace_options.network",
        security(namespace_options=NamespaceOptions(network=NamespaceMode.CONTAINER)),
    )


USERNS = UserNamespace(uids=(IdMapping(0, 196608, 65536),), gids=(IdMapping(0, 262144, 65536),))
USERNS_POD = dataclasses.replace(SANDBOX, userns_path="/run/pycrio/pods/sb1/ns/user", user_namespace=USERNS)


def test_a_container_joins_its_pod_s_user_namespace_with_its_volumes_idmapped() -> None:
    config = dataclasses.replace(
        mounts_config(Mount("/data", "/host/data")),
        security=SecurityContext(namespace_options=NamespaceOptions(user_namespace=USERNS)),
    )
    spec = spec_of(config, sandbox=USERNS_POD, mount_sources={"/host/data": "/host/data"})
    linux = spec["linux"]
    # First: the pod's other namespaces are owned by it, and the runtime joins them from inside it.
    assert linux["namespaces"][0] == {"type": "user", "path": "/run/pycrio/pods/sb1/ns/user"}
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 196608, "size": 65536}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": 262144, "size": 65536}]
    data = by_destination(spec)["/data"]
    assert data["uidMappings"] == linux["uidMappings"]
    assert data["gidMappings"] == linux["gidMappings"]
    # pycrio's own files are chowned to the pod's root instead (PodFiles), not idmapped.
    assert "uidMappings" not in by_destination(spec)["/etc/hosts"]


def test_a_container_cannot_leave_or_change_its_pod_s_user_namespace() -> None:
    in_userns = security(namespace_options=NamespaceOptions(user_namespace=USERNS))
    invalid("mode POD, but the pod has no user namespace", in_userns)
    invalid("mode NODE, but the pod runs in a user namespace", security(), sandbox=USERNS_POD)
    other = UserNamespace(uids=(IdMapping(0, 65536, 65536),), gids=USERNS.gids)
    invalid("differ from the pod's", security(namespace_options=NamespaceOptions(user_namespace=other)),
            sandbox=USERNS_POD)  # fmt: skip
    assert "uidMappings" not in spec_of(security())["linux"]


def test_cgroup_namespace_on_v2_only() -> None:
    v2 = dataclasses.replace(HOST, cgroup_v2=True)
    assert {"type": "cgroup"} in spec_of(host=v2)["linux"]["namespaces"]
    assert {"type": "cgroup"} not in spec_of()["linux"]["namespaces"]


# --- security --------------------------------------------------------------------------------------------


def caps_of(config: ContainerConfig) -> list[str]:
    caps: list[str] = spec_of(config)["process"]["capabilities"]["effective"]
    return caps


def test_default_capabilities_are_cri_o_s() -> None:
    assert set(caps_of(security())) == set(DEFAULT_CAPABILITIES)


def test_add_and_drop_capabilities() -> None:
    caps = caps_of(security(add_capabilities=("NET_ADMIN", "cap_sys_time"), drop_capabilities=("CHOWN",)))
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_TIME" in caps and "CAP_CHOWN" not in caps


def test_all_capabilities_are_what_the_daemon_holds() -> None:
    caps = caps_of(security(add_capabilities=("ALL",)))
    assert "CAP_SYS_RESOURCE" not in caps
    assert len(caps) == len(ALL_CAPABILITIES) - 1
    assert caps_of(security(drop_capabilities=("ALL",), add_capabilities=("KILL",))) == ["CAP_KILL"]


def test_capability_the_daemon_lacks_or_unknown_is_invalid() -> None:
    invalid(
        "CAP_SYS_RESOURCE is not in the runtime's bounding set", security(add_capabilities=("SYS_RESOURCE",))
    )
    invalid("unknown capability 'FLY'", security(drop_capabilities=("FLY",)))


def test_ambient_capabilities() -> None:
    caps = spec_of(security(add_ambient_capabilities=("NET_RAW",)))["process"]["capabilities"]
    assert caps["ambient"] == ["CAP_NET_RAW"] and "CAP_NET_RAW" in caps["permitted"]


def test_privileged_gets_held_caps_devices_no_masks_no_seccomp() -> None:
    privileged_sandbox = dataclasses.replace(SANDBOX, privileged=True)
    config = security(privileged=True, seccomp=SecurityProfile(ProfileType.RUNTIME_DEFAULT))
    spec = spec_of(config, sandbox=privileged_sandbox, host_devices=(HostDevice("/dev/sda", "b", 8, 0),))
    assert "CAP_SYS_ADMIN" in spec["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_RESOURCE" not in spec["process"]["capabilities"]["bounding"]
    assert "maskedPaths" not in spec["linux"] and "seccomp" not in spec["linux"]
    assert spec["linux"]["devices"][0]["path"] == "/dev/sda"
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "rw" in by_destination(spec)["/sys"]["options"]


def test_privileged_container_needs_a_privileged_sandbox() -> None:
    invalid("privileged", security(privileged=True))


def test_masked_and_readonly_paths_default_to_cri_o_s() -> None:
    linux = spec_of()["linux"]
    assert linux["maskedPaths"] == list(DEFAULT_MASKED_PATHS)
    assert linux["readonlyPaths"] == list(DEFAULT_READONLY_PATHS)
    custom = spec_of(security(masked_paths=("/proc/x",), readonly_paths=("/proc/y",)))["linux"]
    assert (custom["maskedPaths"], custom["readonlyPaths"]) == (["/proc/x"], ["/proc/y"])


def test_no_new_privs() -> None:
    assert spec_of(security(no_new_privs=True))["process"]["noNewPrivileges"] is True
    assert spec_of()["process"]["noNewPrivileges"] is False


# --- seccomp ---------------------------------------------------------------------------------------------


def seccomp_of(config: ContainerConfig, **changes: Any) -> dict[str, Any] | None:
    profile: dict[str, Any] | None = spec_of(config, **changes)["linux"].get("seccomp")
    return profile


def allowed(profile: dict[str, Any]) -> set[str]:
    return {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and "args" not in rule
            for n in rule["names"]}  # fmt: skip


def test_runtime_default_seccomp() -> None:
    profile = seccomp_of(security(seccomp=SecurityProfile(ProfileType.RUNTIME_DEFAULT)))
    assert profile is not None
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = allowed(profile)
    assert {"read", "write", "execve", "arch_prctl", "chown"} <= names
    assert not {"mount", "unshare", "reboot", "ptrace", "setns", "arm_fadvise64_64"} & names
    clone = [r for r in profile["syscalls"] if r["names"] == ["clone"]]
    assert clone[0]["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    clone3 = [r for r in profile["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_runtime_default_follows_capabilities() -> None:
    profile = seccomp_of(security(seccomp=SecurityProfile(), add_capabilities=("SYS_ADMIN", "SYS_PTRACE")))
    assert profile is not None
    assert {"mount", "unshare", "clone", "ptrace"} <= allowed(profile)
    assert not [
        r for r in profile["syscalls"] if r["names"] == ["clone3"] and r["action"] != "SCMP_ACT_ALLOW"
    ]


def test_unconfined_and_empty_seccomp() -> None:
    assert seccomp_of(security(seccomp=SecurityProfile(ProfileType.UNCONFINED))) is None
    assert seccomp_of(security()) is None
    assert seccomp_of(security(seccomp_profile_path="runtime/default")) is not None
    with_default = dataclasses.replace(HOST, seccomp_default_when_empty=True)
    assert seccomp_of(security(), host=with_default) is not None
    invalid("seccomp_profile_path", security(seccomp_profile_path="weird"))


def test_localhost_seccomp_profile_is_converted() -> None:
    text = (
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": ['
        '{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},'
        '{"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_BPF"]}}]}'
    )
    config = security(seccomp=SecurityProfile(ProfileType.LOCALHOST, "/etc/profiles/p.json"))
    assert seccomp_of(config, seccomp_profile_text=text) == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    invalid("not valid JSON", config, seccomp_profile_text="{")
    invalid("is empty or missing", config)
    invalid("localhost_ref", security(seccomp=SecurityProfile(ProfileType.LOCALHOST, "rel.json")))
    invalid("defaultAction", config, seccomp_profile_text='{"defaultAction": "NOPE"}')


# --- resources -------------------------------------------------------------------------------------------


def resources_of(resources: Resources, **changes: Any) -> dict[str, Any]:
    spec = spec_of(ContainerConfig(name="c", command=("/x",), resources=resources), **changes)
    return spec


def test_resources_map_to_linux_resources() -> None:
    r = Resources(cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 << 20,
                  cpuset_cpus="0-1", cpuset_mems="0",
                  hugepage_limits=(HugepageLimit("2MB", 4 << 20),))  # fmt: skip
    linux = resources_of(r)["linux"]["resources"]
    assert linux["cpu"] == {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"}
    assert linux["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    assert linux["hugepageLimits"] == [{"pageSize": "2MB", "limit": 4 << 20}]


def test_hugepage_limits_for_sizes_the_runtime_cannot_set_are_left_out() -> None:
    r = Resources(
        hugepage_limits=(HugepageLimit("2MB", 0), HugepageLimit("1GB", 0), HugepageLimit("64KB", 0))
    )
    linux = resources_of(r, host=dataclasses.replace(HOST, hugepage_sizes=frozenset({"1GB"})))
    assert linux["linux"]["resources"]["hugepageLimits"] == [{"pageSize": "1GB", "limit": 0}]
    none = resources_of(r, host=dataclasses.replace(HOST, hugepage_sizes=frozenset()))
    assert "hugepageLimits" not in none["linux"]["resources"]


def test_cgroups_path_per_driver() -> None:
    assert spec_of()["linux"]["cgroupsPath"] == "/pycrio-test-containers/pod1/pycrio-c1"
    systemd = dataclasses.replace(HOST, cgroup_driver="systemd")
    sandbox = dataclasses.replace(SANDBOX, cgroup_parent="kubepods-pod1.slice")
    assert spec_of(host=systemd, sandbox=sandbox)["linux"]["cgroupsPath"] == "kubepods-pod1.slice:pycrio:c1"
    # The sandbox records its slice as the expanded path; runc and crun want the unit's name.
    expanded = dataclasses.replace(SANDBOX, cgroup_parent="/kubepods.slice/kubepods-pod1.slice")
    assert spec_of(host=systemd, sandbox=expanded)["linux"]["cgroupsPath"] == "kubepods-pod1.slice:pycrio:c1"


def test_oom_score_adj_is_clamped_to_the_daemon_s_own() -> None:
    assert resources_of(Resources(oom_score_adj=-998))["process"]["oomScoreAdj"] == 0
    assert resources_of(Resources(oom_score_adj=1000))["process"]["oomScoreAdj"] == 1000
    with pytest.raises(InvalidArgument, match="oom_score_adj"):
        resources_of(Resources(oom_score_adj=1001))


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        (Resources(cpu_shares=-1), "cpu_shares"),
        (Resources(cpu_quota=500), "cpu_quota"),
        (Resources(cpu_period=10), "cpu_period"),
        (Resources(memory_limit_in_bytes=1024), "memory_limit_in_bytes: 1024 is too low"),
        (Resources(memory_limit_in_bytes=-5), "memory_limit_in_bytes"),
        (Resources(cpuset_cpus="0-a"), "cpuset_cpus"),
        (Resources(hugepage_limits=(HugepageLimit("2M", 1),)), "page_size"),
        (Resources(memory_limit_in_bytes=64 << 20, memory_swap_limit_in_bytes=1 << 20), "memory_swap"),
        (Resources(unified=(("memory.max", "1"),)), "unified"),
    ],
)
def test_bad_resources_name_the_field(resources: Resources, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        resources_of(resources)


def test_unified_on_cgroup_v2() -> None:
    v2 = dataclasses.replace(HOST, cgroup_v2=True)
    linux = resources_of(Resources(unified=(("memory.high", "1000000"),)), host=v2)["linux"]["resources"]
    assert linux["unified"] == {"memory.high": "1000000"}


# --- sysctls ---------------------------------------------------------------------------------------------


def test_namespaced_sysctls_pass() -> None:
    sandbox = dataclasses.replace(SANDBOX, sysctls=(("net.ipv4.ip_forward", "1"), ("kernel.shmmax", "1000"),
                                                    ("fs.mqueue.msg_max", "20")))  # fmt: skip
    assert spec_of(sandbox=sandbox)["linux"]["sysctl"] == {
        "net.ipv4.ip_forward": "1",
        "kernel.shmmax": "1000",
        "fs.mqueue.msg_max": "20",
    }


def test_unsafe_or_host_namespace_sysctls_are_invalid() -> None:
    invalid(
        "vm.swappiness is not a namespaced sysctl",
        sandbox=dataclasses.replace(SANDBOX, sysctls=(("vm.swappiness", "1"),)),
    )
    host_net = security(namespace_options=NamespaceOptions(network=NamespaceMode.NODE))
    invalid("net.core.somaxconn needs a pod network namespace",
            host_net,
            sandbox=dataclasses.replace(SANDBOX, sysctls=(("net.core.somaxconn", "1"),)))  # fmt: skip


# --- annotations and shape -------------------------------------------------------------------------------


def test_annotations_and_version() -> None:
    config = ContainerConfig(name="ctr", command=("/x",), annotations={"a": "b"})
    spec = spec_of(config)
    assert spec["ociVersion"] == "1.0.2"
    assert spec["annotations"]["a"] == "b"
    assert spec["annotations"]["io.kubernetes.cri.sandbox-id"] == "sb1"
    assert spec["annotations"]["io.kubernetes.cri.container-name"] == "ctr"
