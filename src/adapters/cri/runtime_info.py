"""Version, Status, RuntimeConfig and UpdateRuntimeConfig."""

import json
from collections.abc import Callable

import grpc

from adapters.cri.generated import api_pb2 as pb
from domain.runtime_info import RuntimeInfoService


class RuntimeInfoHandlers:
    def __init__(
        self, service: RuntimeInfoService, effective_config: Callable[[], dict[str, object]]
    ) -> None:
        self._service = service
        self._effective_config = effective_config

    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> pb.VersionResponse:
        info = self._service.version()
        return pb.VersionResponse(
            version=info.version,
            runtime_name=info.runtime_name,
            runtime_version=info.runtime_version,
            runtime_api_version=info.runtime_api_version,
        )

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        status = self._service.status()
        response = pb.StatusResponse(
            status=pb.RuntimeStatus(
                conditions=[
                    pb.RuntimeCondition(type=c.type, status=c.status, reason=c.reason, message=c.message)
                    for c in status.conditions
                ]
            ),
            runtime_handlers=[
                pb.RuntimeHandler(
                    name=h.name,
                    features=pb.RuntimeHandlerFeatures(
                        recursive_read_only_mounts=h.recursive_read_only_mounts,
                        user_namespaces=h.user_namespaces,
                    ),
                )
                for h in status.handlers
            ],
            features=pb.RuntimeFeatures(supplemental_groups_policy=status.supplemental_groups_policy),
        )
        if request.verbose:
            response.info["config"] = json.dumps(self._effective_config(), sort_keys=True)
            response.info["podCIDR"] = self._service.pod_cidr
        return response

    def RuntimeConfig(
        self, request: pb.RuntimeConfigRequest, context: grpc.ServicerContext
    ) -> pb.RuntimeConfigResponse:
        driver = pb.SYSTEMD if self._service.cgroup_driver == "systemd" else pb.CGROUPFS
        return pb.RuntimeConfigResponse(linux=pb.LinuxRuntimeConfiguration(cgroup_driver=driver))

    def UpdateRuntimeConfig(
        self, request: pb.UpdateRuntimeConfigRequest, context: grpc.ServicerContext
    ) -> pb.UpdateRuntimeConfigResponse:
        self._service.update_pod_cidr(request.runtime_config.network_config.pod_cidr)
        return pb.UpdateRuntimeConfigResponse()
