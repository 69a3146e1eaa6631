"""A pod's user namespace: the kubelet's ID mappings, checked before anything is made.

The kubelet (hostUsers: false) sends userns_options with mode POD and one uid and one gid mapping of
65536 ids from container id 0, at a host id it allocated (a multiple of 65536, never 0). Every container
of the pod repeats the same options. Mode NODE means no user namespace. The rules below are the kubelet's
and containerd's: one mapping each, from container id 0, inside the 32-bit id space, not holding host
root, and a container's options equal to its pod's.
"""

from domain.container_config import NamespaceMode
from domain.errors import FailedPrecondition, InvalidArgument
from domain.id_mappings import IdMapping, UserNamespace

_ID_SPACE = 1 << 32
# The id that means "no id" ((uid_t)-1) must stay unmapped: the kernel refuses a map holding it.
_LAST_ID = _ID_SPACE - 1


def pod_user_namespace(
    where: str, mode: NamespaceMode, uids: list[IdMapping], gids: list[IdMapping]
) -> UserNamespace | None:
    """The user namespace asked for (None for mode NODE); InvalidArgument naming the field otherwise."""
    field = f"{where}.namespace_options.userns_options"
    if mode is NamespaceMode.NODE:
        if uids or gids:
            raise InvalidArgument(f"{field}: mode NODE takes no uids/gids mappings")
        return None
    if mode is not NamespaceMode.POD:
        raise InvalidArgument(f"{field}.mode: {mode.name} is not supported (NODE or POD)")
    for kind, mappings in (("uids", uids), ("gids", gids)):
        if len(mappings) != 1:
            raise InvalidArgument(
                f"{field}.{kind}: {len(mappings)} mappings; mode POD takes exactly one (as the kubelet sends)"
            )
        _check_mapping(f"{field}.{kind}[0]", mappings[0])
    return UserNamespace(uids=tuple(uids), gids=tuple(gids))


def _check_mapping(where: str, mapping: IdMapping) -> None:
    if mapping.length <= 0:
        raise InvalidArgument(f"{where}.length: {mapping.length}, a mapping needs at least one id")
    if mapping.container_id != 0:
        raise InvalidArgument(f"{where}.container_id: {mapping.container_id}, the mapping must start at 0")
    if mapping.host_id == 0:
        raise InvalidArgument(f"{where}.host_id: 0 would map the host's root into the pod")
    for name, start in (("host_id", mapping.host_id), ("container_id", mapping.container_id)):
        if start + mapping.length > _LAST_ID:
            raise InvalidArgument(
                f"{where}: {name} {start} + length {mapping.length} runs past the last id {_LAST_ID - 1}"
            )


def check_container_user_namespace(container: UserNamespace | None, pod: UserNamespace | None) -> None:
    """A container shares its pod's user namespace: the same mode and mappings, or neither has one."""
    field = "namespace_options.userns_options"
    if container == pod:
        return
    if pod is None:
        raise InvalidArgument(f"{field}: mode POD, but the pod has no user namespace")
    if container is None:
        raise InvalidArgument(f"{field}: mode NODE, but the pod runs in a user namespace (mode POD)")
    raise InvalidArgument(f"{field}: the mappings differ from the pod's; a container shares the pod's")


def check_handler_supports(handler: str, supported: bool, reason: str) -> None:
    """Refuse a user-namespaced pod on a runtime handler that cannot run one, with the handler's reason."""
    if not supported:
        raise FailedPrecondition(
            f"PodSandboxConfig.linux.security_context.namespace_options.userns_options: runtime handler "
            f"{handler!r} cannot run pods in a user namespace: {reason}"
        )
