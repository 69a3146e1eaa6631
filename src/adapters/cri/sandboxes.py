"""RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox, StreamPodSandboxes and
UpdatePodSandboxResources."""

import json
from collections.abc import Iterator
from typing import Any

import grpc

from adapters.cri.containers import linux_container_resources, user_namespace
from adapters.cri.containers import resources as container_resources
from adapters.cri.deadlines import caller_gone
from adapters.cri.events import CriStatusSource
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.list_answers import EncodedResponse, ListAnswers
from adapters.cri.stats import chunks
from domain.container_config import Resources
from domain.id_mappings import IdMapping, UserNamespace
from domain.sandbox_model import (
    NamespaceMode,
    NamespaceOptions,
    PodSandbox,
    SandboxConfig,
    SandboxMetadata,
    SandboxState,
)
from domain.sandbox_spec import sandbox_runtime_spec
from domain.sandboxes import SandboxFilter, SandboxService
from ports.clock import Clock
from ports.network import DnsSettings, PortMapping

_PROTOCOLS = {pb.TCP: "tcp", pb.UDP: "udp", pb.SCTP: "sctp"}
_MODES = {
    pb.POD: NamespaceMode.POD,
    pb.CONTAINER: NamespaceMode.CONTAINER,
    pb.NODE: NamespaceMode.NODE,
    pb.TARGET: NamespaceMode.TARGET,
}
_MODE_CODES = {mode: code for code, mode in _MODES.items()}
_STATES = {SandboxState.READY: pb.SANDBOX_READY, SandboxState.NOTREADY: pb.SANDBOX_NOTREADY}


class SandboxHandlers:
    """`statuses` and `clock` give PodSandboxStatus the pod's container statuses and the time they were
    gathered, as cri-o answers with pod events on: a kubelet with the evented PLEG caches that answer under
    that time, and without a time it would never replace a cached status with it. Without them (tests of
    other RPCs) the answer carries neither, which the kubelet reads as a runtime without pod events."""

    def __init__(
        self, service: SandboxService, statuses: CriStatusSource | None = None, clock: Clock | None = None
    ) -> None:
        self._service = service
        self._statuses = statuses
        self._clock = clock
        self._answers = ListAnswers()
        self._stream_answers = ListAnswers()

    def RunPodSandbox(
        self, request: pb.RunPodSandboxRequest, context: grpc.ServicerContext
    ) -> pb.RunPodSandboxResponse:
        sandbox_id = self._service.run(
            sandbox_config(request.config),
            runtime_handler=request.runtime_handler,
            caller_gone=lambda: caller_gone(context),
        )
        return pb.RunPodSandboxResponse(pod_sandbox_id=sandbox_id)

    def StopPodSandbox(
        self, request: pb.StopPodSandboxRequest, context: grpc.ServicerContext
    ) -> pb.StopPodSandboxResponse:
        self._service.stop(request.pod_sandbox_id)
        return pb.StopPodSandboxResponse()

    def RemovePodSandbox(
        self, request: pb.RemovePodSandboxRequest, context: grpc.ServicerContext
    ) -> pb.RemovePodSandboxResponse:
        self._service.remove(request.pod_sandbox_id)
        return pb.RemovePodSandboxResponse()

    def PodSandboxStatus(
        self, request: pb.PodSandboxStatusRequest, context: grpc.ServicerContext
    ) -> pb.PodSandboxStatusResponse:
        sb = self._service.status(request.pod_sandbox_id)
        response = pb.PodSandboxStatusResponse(status=pod_sandbox_status(sb))
        if self._statuses is not None and self._clock is not None:
            # The time is taken first: the statuses are at least as new as the time they are cached under.
            response.timestamp = self._clock.now_ns()
            response.containers_statuses.extend(self._statuses.container_statuses(sb.id))
        if request.verbose:
            response.info["info"] = json.dumps(verbose_info(sb), sort_keys=True)
        return response

    def ListPodSandbox(
        self, request: pb.ListPodSandboxRequest, context: grpc.ServicerContext
    ) -> EncodedResponse:
        """The kept answer for this filter while no pod changed (list_answers.py)."""
        wanted = request.filter
        return self._answers.answer(
            wanted.SerializeToString(deterministic=True),
            self._service.list_version(),
            lambda: pb.ListPodSandboxResponse(items=self._listed(wanted)),
        )

    def StreamPodSandboxes(
        self, request: pb.StreamPodSandboxesRequest, context: grpc.ServicerContext
    ) -> Iterator[EncodedResponse]:
        """ListPodSandbox's pods in messages of up to stats.STREAM_CHUNK, each pod once; none, no message.
        Kept as ListPodSandbox's answers are."""
        wanted = request.filter
        yield from self._stream_answers.messages(
            wanted.SerializeToString(deterministic=True),
            self._service.list_version(),
            lambda: [pb.StreamPodSandboxesResponse(pod_sandboxes=c) for c in chunks(self._listed(wanted))],
        )

    def UpdatePodSandboxResources(
        self, request: pb.UpdatePodSandboxResourcesRequest, context: grpc.ServicerContext
    ) -> pb.UpdatePodSandboxResourcesResponse:
        self._service.update_resources(
            request.pod_sandbox_id,
            overhead=_resources_record(request, "overhead"),
            resources=_resources_record(request, "resources"),
        )
        return pb.UpdatePodSandboxResourcesResponse()

    def _listed(self, wanted: pb.PodSandboxFilter) -> list[pb.PodSandbox]:
        query = SandboxFilter(
            id=wanted.id,
            state=(SandboxState.READY if wanted.state.state == pb.SANDBOX_READY else SandboxState.NOTREADY)
            if wanted.HasField("state")
            else None,
            labels=dict(wanted.label_selector),
        )
        return [
            pb.PodSandbox(
                id=sb.id,
                metadata=_metadata(sb),
                state=_STATES[sb.state],
                created_at=sb.created_at,
                labels=sb.config.labels,
                annotations=sb.config.annotations,
                runtime_handler=sb.runtime_handler,
            )
            for sb in self._service.list(query)
        ]


def pod_sandbox_status(sb: PodSandbox) -> pb.PodSandboxStatus:
    """PodSandboxStatus's answer for a pod (also what container events carry)."""
    options = sb.config.namespace_options
    ips = sb.ips
    return pb.PodSandboxStatus(
        id=sb.id,
        metadata=_metadata(sb),
        state=_STATES[sb.state],
        created_at=sb.created_at,
        network=pb.PodSandboxNetworkStatus(
            ip=ips[0] if ips else "", additional_ips=[pb.PodIP(ip=ip) for ip in ips[1:]]
        ),
        linux=pb.LinuxPodSandboxStatus(
            namespaces=pb.Namespace(
                options=pb.NamespaceOption(
                    network=_MODE_CODES[options.network],
                    pid=_MODE_CODES[options.pid],
                    ipc=_MODE_CODES[options.ipc],
                    target_id=options.target_id,
                    userns_options=_userns_options(sb.config.user_namespace),
                )
            )
        ),
        labels=sb.config.labels,
        annotations=sb.config.annotations,
        runtime_handler=sb.runtime_handler,
    )


def _userns_options(userns: UserNamespace | None) -> pb.UserNamespace:
    """The pod's user namespace as the kubelet asked for it: NODE (the host's) or POD with its mappings."""
    if userns is None:
        return pb.UserNamespace(mode=pb.NODE)
    return pb.UserNamespace(mode=pb.POD, uids=_id_mappings(userns.uids), gids=_id_mappings(userns.gids))


def _id_mappings(mappings: tuple[IdMapping, ...]) -> list[pb.IDMapping]:
    return [pb.IDMapping(host_id=m.host_id, container_id=m.container_id, length=m.length) for m in mappings]


def sandbox_config(config: pb.PodSandboxConfig) -> SandboxConfig:
    """The domain's view of a PodSandboxConfig; missing metadata reaches the domain as empty fields."""
    linux = config.linux
    security = linux.security_context
    ns = security.namespace_options
    return SandboxConfig(
        metadata=SandboxMetadata(
            name=config.metadata.name,
            uid=config.metadata.uid,
            namespace=config.metadata.namespace,
            attempt=config.metadata.attempt,
        ),
        hostname=config.hostname,
        log_directory=config.log_directory,
        dns=(
            DnsSettings(
                servers=list(config.dns_config.servers),
                searches=list(config.dns_config.searches),
                options=list(config.dns_config.options),
            )
            if config.HasField("dns_config")
            else None
        ),
        port_mappings=[
            PortMapping(
                protocol=_PROTOCOLS.get(m.protocol, str(m.protocol)),
                container_port=m.container_port,
                host_port=m.host_port,
                host_ip=m.host_ip,
            )
            for m in config.port_mappings
        ],
        labels=dict(config.labels),
        annotations=dict(config.annotations),
        cgroup_parent=linux.cgroup_parent,
        namespace_options=NamespaceOptions(
            network=_MODES.get(ns.network, NamespaceMode.POD),
            pid=_MODES.get(ns.pid, NamespaceMode.POD),
            ipc=_MODES.get(ns.ipc, NamespaceMode.POD),
            target_id=ns.target_id,
        ),
        sysctls=dict(linux.sysctls),
        privileged=security.privileged,
        overhead=_resources_record(linux, "overhead"),
        resources=_resources_record(linux, "resources"),
        user_namespace=user_namespace(ns, "PodSandboxConfig.linux.security_context"),
    )


def _resources_record(
    message: pb.LinuxPodSandboxConfig | pb.UpdatePodSandboxResourcesRequest, field: str
) -> Resources:
    """A LinuxContainerResources field as domain Resources; absent = none set."""
    if not message.HasField(field):
        return Resources()
    return container_resources(getattr(message, field))


def _resources_info(resources: Resources) -> dict[str, Any]:
    """Resources in verbose info as the CRI's JSON mapping (proto names; unset fields left out)."""
    from google.protobuf import json_format  # at the first verbose status, not at start-up

    message = linux_container_resources(resources)
    return dict(json_format.MessageToDict(message, preserving_proto_field_name=True))


def _metadata(sb: PodSandbox) -> pb.PodSandboxMetadata:
    meta = sb.config.metadata
    return pb.PodSandboxMetadata(name=meta.name, uid=meta.uid, namespace=meta.namespace, attempt=meta.attempt)


def verbose_info(sb: PodSandbox) -> dict[str, Any]:
    """What cri-o's verbose status carries (pid, runtimeSpec), plus where everything of the pod is."""
    attachment = sb.attachment
    return {
        "pid": sb.infra.pid if sb.infra else 0,
        "image": "",
        "runtimeHandler": sb.runtime_handler,
        "ociRuntime": sb.oci_runtime,
        "hostname": sb.hostname,
        "namespaces": {
            "network": sb.namespaces.network,
            "ipc": sb.namespaces.ipc,
            "uts": sb.namespaces.uts,
            "pid": sb.pid_namespace,
        },
        "cgroupDriver": sb.cgroup_driver,
        "cgroupParent": sb.cgroup_parent,
        "cgroupPath": sb.cgroup_path,
        "files": (
            {
                "hostname": sb.files.hostname,
                "hosts": sb.files.hosts,
                "resolvConf": sb.files.resolv_conf,
                "shm": sb.files.shm,
            }
            if sb.files
            else {}
        ),
        "network": (
            {
                "name": attachment.network_name,
                "ips": attachment.ips,
                "addresses": [a.address for a in attachment.addresses],
                "interfaces": [
                    {"name": i.name, "mac": i.mac, "sandbox": i.sandbox} for i in attachment.interfaces
                ],
                "phase": sb.network_phase.value,
            }
            if attachment
            else {"phase": sb.network_phase.value}
        ),
        "portMappings": [
            {
                "protocol": m.protocol,
                "containerPort": m.container_port,
                "hostPort": m.host_port,
                "hostIP": m.host_ip,
            }
            for m in sb.config.port_mappings
        ],
        "sysctls": sb.config.sysctls,
        "privileged": sb.config.privileged,
        "overhead": _resources_info(sb.config.overhead),
        "resources": _resources_info(sb.config.resources),
        "runtimeSpec": sandbox_runtime_spec(sb),
    }
