"""CreateContainer, StartContainer, StopContainer, RemoveContainer, ListContainers, StreamContainers,
ContainerStatus, UpdateContainerResources, ReopenContainerLog, ExecSync and CheckpointContainer: protobuf to
the domain and back."""

import enum
import json
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import grpc
import structlog

from adapters.cri.deadlines import caller_gone
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.list_answers import EncodedResponse, ListAnswers
from adapters.cri.stats import chunks
from domain.container_config import (
    ContainerConfig,
    Device,
    HugepageLimit,
    Mount,
    NamespaceMode,
    NamespaceOptions,
    ProfileType,
    Propagation,
    Resources,
    SecurityContext,
    SecurityProfile,
    SupplementalGroupsPolicy,
)
from domain.containers import Container, ContainerFilter, ContainerService, ContainerState
from domain.errors import DeadlineExceeded, InvalidArgument, NotSupported
from domain.id_mappings import IdMapping, UserNamespace
from domain.userns import pod_user_namespace
from ports.oci_runtime import MAX_EXEC_OUTPUT

_log = structlog.get_logger("pycrio.containers")
_PROPAGATION: dict[int, Propagation] = {
    pb.PROPAGATION_PRIVATE: Propagation.PRIVATE,
    pb.PROPAGATION_HOST_TO_CONTAINER: Propagation.HOST_TO_CONTAINER,
    pb.PROPAGATION_BIDIRECTIONAL: Propagation.BIDIRECTIONAL,
}
_PROPAGATION_CODES: dict[Propagation, Any] = {mode: code for code, mode in _PROPAGATION.items()}
_STATES = {
    ContainerState.CREATED: pb.CONTAINER_CREATED,
    ContainerState.RUNNING: pb.CONTAINER_RUNNING,
    ContainerState.EXITED: pb.CONTAINER_EXITED,
    ContainerState.UNKNOWN: pb.CONTAINER_UNKNOWN,
}
_STATE_BY_CODE: dict[int, ContainerState] = {int(code): state for state, code in _STATES.items()}
_SIGNAL_NAMES = set(pb.Signal.keys())

_E = TypeVar("_E", bound=enum.Enum)


def _enum(cls: type[_E], value: int, field: str) -> _E:
    """A proto enum value as a domain enum; a number the proto does not define is the caller's mistake."""
    try:
        return cls(value)
    except ValueError:
        raise InvalidArgument(f"{field}: {value} is not a valid value") from None


def user_namespace(ns: pb.NamespaceOption, where: str) -> UserNamespace | None:
    """userns_options as the domain's UserNamespace (None: the host's); bad options are refused here."""
    if not ns.HasField("userns_options"):
        return None
    options = ns.userns_options
    mode = _enum(NamespaceMode, options.mode, f"{where}.namespace_options.userns_options.mode")
    return pod_user_namespace(where, mode, _mappings(options.uids), _mappings(options.gids))


def _mappings(mappings: Iterable[pb.IDMapping]) -> list[IdMapping]:
    return [IdMapping(container_id=m.container_id, host_id=m.host_id, length=m.length) for m in mappings]


class ContainerHandlers:
    def __init__(self, service: ContainerService) -> None:
        self._service = service
        self._answers = ListAnswers()
        self._stream_answers = ListAnswers()

    def CreateContainer(
        self, request: pb.CreateContainerRequest, context: grpc.ServicerContext
    ) -> pb.CreateContainerResponse:
        if not request.pod_sandbox_id:
            raise InvalidArgument("pod_sandbox_id: empty")
        if not request.HasField("config"):
            raise InvalidArgument("config: missing")
        container_id = self._service.create(
            request.pod_sandbox_id, container_config(request.config), caller_gone=lambda: caller_gone(context)
        )
        return pb.CreateContainerResponse(container_id=container_id)

    def StartContainer(
        self, request: pb.StartContainerRequest, context: grpc.ServicerContext
    ) -> pb.StartContainerResponse:
        self._service.start(request.container_id)
        return pb.StartContainerResponse()

    def StopContainer(
        self, request: pb.StopContainerRequest, context: grpc.ServicerContext
    ) -> pb.StopContainerResponse:
        if request.timeout < 0:
            raise InvalidArgument(f"timeout: {request.timeout} is negative")
        self._service.stop(request.container_id, float(request.timeout))
        return pb.StopContainerResponse()

    def RemoveContainer(
        self, request: pb.RemoveContainerRequest, context: grpc.ServicerContext
    ) -> pb.RemoveContainerResponse:
        if not request.container_id:
            raise InvalidArgument("container_id: empty")
        self._service.remove(request.container_id)
        return pb.RemoveContainerResponse()

    def ListContainers(
        self, request: pb.ListContainersRequest, context: grpc.ServicerContext
    ) -> EncodedResponse:
        """The kept answer for this filter while no container changed (list_answers.py)."""
        return self._answers.answer(
            request.filter.SerializeToString(deterministic=True),
            self._service.list_version(),
            lambda: pb.ListContainersResponse(containers=self._listed(request)),
        )

    def StreamContainers(
        self, request: pb.StreamContainersRequest, context: grpc.ServicerContext
    ) -> Iterator[EncodedResponse]:
        """ListContainers' containers in messages of up to stats.STREAM_CHUNK, each once; none, no message.
        Kept as ListContainers' answers are."""
        yield from self._stream_answers.messages(
            request.filter.SerializeToString(deterministic=True),
            self._service.list_version(),
            lambda: [pb.StreamContainersResponse(containers=c) for c in chunks(self._listed(request))],
        )

    def _listed(self, request: pb.ListContainersRequest | pb.StreamContainersRequest) -> list[pb.Container]:
        selector = ContainerFilter()
        if request.HasField("filter"):
            f = request.filter
            selector = ContainerFilter(
                id=f.id,
                state=_state_filter(f.state.state) if f.HasField("state") else None,
                sandbox_id=f.pod_sandbox_id,
                labels=dict(f.label_selector),
            )
        return [_listed(c) for c in self._service.list_containers(selector)]

    def ContainerStatus(
        self, request: pb.ContainerStatusRequest, context: grpc.ServicerContext
    ) -> pb.ContainerStatusResponse:
        container = self._service.status(request.container_id)
        info = {}
        if request.verbose:
            info["info"] = json.dumps(
                {
                    "sandboxID": container.sandbox_id,
                    "pid": container.pid,
                    "privileged": container.config.security.privileged,
                    "runtimeHandler": container.runtime_handler,
                    "bundle": container.bundle,
                    "rootfs": container.rootfs,
                    "runtimeSpec": container.spec,
                }
            )
        return pb.ContainerStatusResponse(status=container_status(container), info=info)

    def UpdateContainerResources(
        self, request: pb.UpdateContainerResourcesRequest, context: grpc.ServicerContext
    ) -> pb.UpdateContainerResourcesResponse:
        if not request.HasField("linux"):
            raise InvalidArgument("linux: missing (only Linux resources are supported)")
        self._service.update_resources(request.container_id, resources(request.linux))
        return pb.UpdateContainerResourcesResponse()

    def ReopenContainerLog(
        self, request: pb.ReopenContainerLogRequest, context: grpc.ServicerContext
    ) -> pb.ReopenContainerLogResponse:
        self._service.reopen_log(request.container_id)
        return pb.ReopenContainerLogResponse()

    def ExecSync(self, request: pb.ExecSyncRequest, context: grpc.ServicerContext) -> pb.ExecSyncResponse:
        result = self._service.exec_sync(request.container_id, list(request.cmd), float(request.timeout))
        if result.timed_out:
            raise DeadlineExceeded(f"command timed out after {request.timeout}s and was killed")
        if result.truncated:
            _log.warning("exec output truncated", container_id=request.container_id, limit=MAX_EXEC_OUTPUT)
        return pb.ExecSyncResponse(stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code)

    def CheckpointContainer(
        self, request: pb.CheckpointContainerRequest, context: grpc.ServicerContext
    ) -> pb.CheckpointContainerResponse:
        """Where the runtime cannot checkpoint here, the answer is UNIMPLEMENTED in the words the kubelet's
        checkpoint test skips on (domain/checkpoints.py), before any look-up as cri-o; the reason is logged.
        """
        try:
            self._service.checkpoint(request.container_id, request.location, float(request.timeout))
        except NotSupported:
            _log.warning("checkpoint/restore unavailable", reason=self._service.checkpoint_refusal())
            raise
        return pb.CheckpointContainerResponse()


def _state_filter(code: int) -> ContainerState:
    if code not in _STATE_BY_CODE:
        raise InvalidArgument(f"filter.state: {code} is not a container state")
    return _STATE_BY_CODE[code]


# --- protobuf -> domain ---------------------------------------------------------------------------------


def container_config(config: pb.ContainerConfig) -> ContainerConfig:
    linux = config.linux
    mounts = []
    for index, mount in enumerate(config.mounts):
        if mount.image.image and mount.host_path:
            raise InvalidArgument(f"mounts[{index}]: an image volume has no host_path")
        if mount.uidMappings or mount.gidMappings:
            raise InvalidArgument(f"mounts[{index}]: id-mapped mounts are not supported")
        mounts.append(
            Mount(
                container_path=mount.container_path,
                host_path=mount.host_path,
                readonly=mount.readonly,
                propagation=_propagation(mount.propagation, f"mounts[{index}].propagation"),
                recursive_read_only=mount.recursive_read_only,
                selinux_relabel=mount.selinux_relabel,
                image=mount.image.image,
                image_sub_path=mount.image_sub_path,
                user_specified_image=mount.image.user_specified_image,
                image_annotations=dict(mount.image.annotations),
                image_runtime_handler=mount.image.runtime_handler,
            )
        )
    return ContainerConfig(
        name=config.metadata.name,
        attempt=config.metadata.attempt,
        image=config.image.image,
        command=tuple(config.command),
        args=tuple(config.args),
        working_dir=config.working_dir,
        envs=tuple((kv.key, env_value(kv.value)) for kv in config.envs),
        mounts=tuple(mounts),
        devices=tuple(Device(d.container_path, d.host_path, d.permissions) for d in config.devices),
        labels=dict(config.labels),
        annotations=dict(config.annotations),
        cdi_devices=tuple(device.name for device in config.CDI_devices),
        log_path=config.log_path,
        stdin=config.stdin,
        stdin_once=config.stdin_once,
        tty=config.tty,
        resources=resources(linux.resources) if linux.HasField("resources") else Resources(),
        security=security_context(linux.security_context),
        stop_signal=_signal_name(config.stop_signal),
        user_specified_image=config.image.user_specified_image,
        image_annotations=dict(config.image.annotations),
        image_runtime_handler=config.image.runtime_handler,
    )


def env_value(value: bytes) -> str:
    """An environment value as the OCI spec's text. cri-api 1.36.2 made it bytes so that binary values (from
    a Secret) reach the runtime; config.json is JSON, so bytes that are not UTF-8 become U+FFFD, as Go's
    encoding/json makes them in containerd's and cri-o's specs (and as runc would read them anyway)."""
    return value.decode("utf-8", errors="replace")


def _propagation(code: int, field: str) -> Propagation:
    if code not in _PROPAGATION:
        raise InvalidArgument(f"{field}: {code} is not a mount propagation")
    return _PROPAGATION[code]


def _signal_name(code: int) -> str:
    if code == pb.RUNTIME_DEFAULT:
        return ""
    try:
        name = pb.Signal.Name(code)
    except ValueError:
        raise InvalidArgument(f"stop_signal: {code} is not a signal") from None
    if name.startswith("SIGRTMINPLUS"):
        return "SIGRTMIN+" + name.removeprefix("SIGRTMINPLUS")
    if name.startswith("SIGRTMAXMINUS"):
        return f"SIGRTMIN+{30 - int(name.removeprefix('SIGRTMAXMINUS'))}"
    return name


# The LinuxContainerResources fields that are the same in protobuf and in the domain's Resources.
_PLAIN_RESOURCES = ("cpu_period", "cpu_quota", "cpu_shares", "memory_limit_in_bytes",
                    "memory_swap_limit_in_bytes", "oom_score_adj", "cpuset_cpus", "cpuset_mems")  # fmt: skip


def resources(r: pb.LinuxContainerResources) -> Resources:
    return Resources(
        **{name: getattr(r, name) for name in _PLAIN_RESOURCES},
        hugepage_limits=tuple(HugepageLimit(h.page_size, h.limit) for h in r.hugepage_limits),
        unified=tuple(sorted(r.unified.items())),
    )


def _profile(profile: pb.SecurityProfile) -> SecurityProfile:
    return SecurityProfile(_enum(ProfileType, profile.profile_type, "profile_type"), profile.localhost_ref)


def security_context(sc: pb.LinuxContainerSecurityContext) -> SecurityContext:
    ns = sc.namespace_options
    userns = user_namespace(ns, "ContainerConfig.linux.security_context")
    return SecurityContext(
        privileged=sc.privileged,
        add_capabilities=tuple(sc.capabilities.add_capabilities),
        drop_capabilities=tuple(sc.capabilities.drop_capabilities),
        add_ambient_capabilities=tuple(sc.capabilities.add_ambient_capabilities),
        namespace_options=NamespaceOptions(
            network=_enum(NamespaceMode, ns.network, "namespace_options.network"),
            pid=_enum(NamespaceMode, ns.pid, "namespace_options.pid"),
            ipc=_enum(NamespaceMode, ns.ipc, "namespace_options.ipc"),
            target_id=ns.target_id,
            user_namespace=userns,
        ),
        run_as_user=sc.run_as_user.value if sc.HasField("run_as_user") else None,
        run_as_group=sc.run_as_group.value if sc.HasField("run_as_group") else None,
        run_as_username=sc.run_as_username,
        readonly_rootfs=sc.readonly_rootfs,
        supplemental_groups=tuple(sc.supplemental_groups),
        supplemental_groups_policy=_enum(
            SupplementalGroupsPolicy, sc.supplemental_groups_policy, "supplemental_groups_policy"
        ),
        no_new_privs=sc.no_new_privs,
        masked_paths=tuple(sc.masked_paths),
        readonly_paths=tuple(sc.readonly_paths),
        seccomp=_profile(sc.seccomp) if sc.HasField("seccomp") else None,
        seccomp_profile_path=sc.seccomp_profile_path,
        apparmor=_profile(sc.apparmor) if sc.HasField("apparmor") else None,
    )


# --- domain -> protobuf ---------------------------------------------------------------------------------


def _metadata(container: Container) -> pb.ContainerMetadata:
    return pb.ContainerMetadata(name=container.config.name, attempt=container.config.attempt)


def _image_spec(container: Container) -> pb.ImageSpec:
    """The container's image by name (its first tag when the kubelet named it by id), with the rest of the
    ImageSpec CreateContainer carried: what the pod spec said, annotations, the runtime handler."""
    config = container.config
    return pb.ImageSpec(
        image=container.image_name,
        user_specified_image=config.user_specified_image,
        annotations=config.image_annotations,
        runtime_handler=config.image_runtime_handler,
    )


def _listed(container: Container) -> pb.Container:
    return pb.Container(
        id=container.id,
        pod_sandbox_id=container.sandbox_id,
        metadata=_metadata(container),
        image=_image_spec(container),
        image_ref=container.image_ref,
        image_id=container.image_id,
        state=_STATES[container.state],
        created_at=container.created_at,
        labels=container.config.labels,
        annotations=container.config.annotations,
    )


def linux_container_resources(r: Resources) -> pb.LinuxContainerResources:
    return pb.LinuxContainerResources(
        **{name: getattr(r, name) for name in _PLAIN_RESOURCES},
        hugepage_limits=[pb.HugepageLimit(page_size=h.page_size, limit=h.limit) for h in r.hugepage_limits],
        unified=dict(r.unified),
    )


def _user(spec: dict[str, Any]) -> pb.ContainerUser:
    user = spec.get("process", {}).get("user", {})
    return pb.ContainerUser(
        linux=pb.LinuxContainerUser(
            uid=user.get("uid", 0),
            gid=user.get("gid", 0),
            supplemental_groups=user.get("additionalGids", []),
        )
    )


def _image_volume_spec(mount: Mount, container: Container, index: int) -> pb.ImageSpec | None:
    """An image volume's ImageSpec as asked for, and the image id it resolved to (the PullImage image_ref)."""
    if not mount.image:
        return None
    ids = container.image_volume_ids
    return pb.ImageSpec(
        image=mount.image,
        user_specified_image=mount.user_specified_image,
        annotations=mount.image_annotations,
        runtime_handler=mount.image_runtime_handler,
        image_ref=ids[index] if index < len(ids) else "",
    )


def container_status(container: Container) -> pb.ContainerStatus:
    mounts = [
        pb.Mount(
            container_path=m.container_path,
            host_path=m.host_path,
            readonly=m.readonly,
            selinux_relabel=m.selinux_relabel,
            propagation=_PROPAGATION_CODES[m.propagation],
            recursive_read_only=m.recursive_read_only,
            image=_image_volume_spec(m, container, index),
            image_sub_path=m.image_sub_path,
        )
        for index, m in enumerate(container.config.mounts)
    ]
    return pb.ContainerStatus(
        id=container.id,
        metadata=_metadata(container),
        state=_STATES[container.state],
        created_at=container.created_at,
        started_at=container.started_at,
        finished_at=container.finished_at,
        exit_code=container.exit_code,
        image=_image_spec(container),
        image_ref=container.image_ref,
        image_id=container.image_id,
        reason=container.reason,
        message=container.message,
        labels=container.config.labels,
        annotations=container.config.annotations,
        mounts=mounts,
        log_path=container.log_path,
        resources=pb.ContainerResources(linux=linux_container_resources(container.resources)),
        user=_user(container.spec),
        stop_signal=_cri_signal(container.stop_signal),
    )


def _cri_signal(name: str) -> str:
    """The Signal enum's name for the domain's signal name: the enum counts SIGRTMIN+1..15 up from SIGRTMIN
    and the next ones down from SIGRTMAX (SIGRTMIN+29 is SIGRTMAXMINUS1), as _signal_name reads them."""
    if name.startswith("SIGRTMIN+"):
        offset = int(name.removeprefix("SIGRTMIN+"))
        name = f"SIGRTMINPLUS{offset}" if offset <= 15 else f"SIGRTMAXMINUS{30 - offset}"
    return name if name in _SIGNAL_NAMES else "RUNTIME_DEFAULT"
