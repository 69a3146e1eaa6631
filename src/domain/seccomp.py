"""Seccomp for a container: which profile the CRI asks for, and its conversion into OCI `linux.seccomp`.

Profiles come in the Docker format (`archMap`, per-rule `includes`/`excludes` on capabilities and
architectures) or already in the OCI format; both are reduced here to the OCI form for one architecture and
one capability set, as containerd and cri-o do before handing the spec to runc.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.container_config import ProfileType, SecurityContext, SecurityProfile
from domain.errors import InvalidArgument
from domain.json_documents import load_json

# Go GOARCH names (used in includes/excludes) for each machine() value, and the seccomp arch.
_ARCHES: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}

_ACTIONS = {
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
}  # fmt: skip
_OPS = {
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
}  # fmt: skip


@dataclass(frozen=True)
class SeccompChoice:
    """Which profile to apply: none, the built-in default, or a Localhost file (its host path)."""

    kind: ProfileType | None  # None = unconfined
    localhost_path: str = ""


def choose_profile(security: SecurityContext, default_when_empty: bool = False) -> SeccompChoice:
    """The profile a security context asks for; privileged containers run unconfined."""
    if security.privileged:
        return SeccompChoice(None)
    profile: SecurityProfile | None = security.seccomp
    if profile is None:
        profile = _from_deprecated_path(security.seccomp_profile_path, default_when_empty)
    if profile is None or profile.profile_type is ProfileType.UNCONFINED:
        return SeccompChoice(None)
    if profile.profile_type is ProfileType.RUNTIME_DEFAULT:
        return SeccompChoice(ProfileType.RUNTIME_DEFAULT)
    if not profile.localhost_ref.startswith("/"):
        raise InvalidArgument(f"seccomp.localhost_ref: {profile.localhost_ref!r} is not an absolute path")
    return SeccompChoice(ProfileType.LOCALHOST, profile.localhost_ref)


def _from_deprecated_path(path: str, default_when_empty: bool) -> SecurityProfile | None:
    if path == "":
        return SecurityProfile(ProfileType.RUNTIME_DEFAULT) if default_when_empty else None
    if path == "unconfined":
        return SecurityProfile(ProfileType.UNCONFINED)
    if path in ("runtime/default", "docker/default"):
        return SecurityProfile(ProfileType.RUNTIME_DEFAULT)
    if path.startswith("localhost/"):
        return SecurityProfile(ProfileType.LOCALHOST, path.removeprefix("localhost"))
    raise InvalidArgument(
        f"seccomp_profile_path: {path!r} is not runtime/default, unconfined or localhost/..."
    )


def runtime_default(capabilities: Iterable[str], machine: str) -> dict[str, Any]:
    # The default profile's syscall lists load at the first container that uses it, not at start-up.
    from domain.seccomp_default import default_profile_document

    return convert(default_profile_document(), capabilities, machine, "RuntimeDefault")


def from_profile_text(text: str, capabilities: Iterable[str], machine: str, source: str) -> dict[str, Any]:
    document = load_json(text, f"seccomp profile {source}")
    if not isinstance(document, dict):
        raise InvalidArgument(f"seccomp profile {source}: not a JSON object")
    return convert(document, capabilities, machine, source)


def _matches(condition: Any, caps: set[str], goarch: str) -> tuple[bool, bool]:
    """(has any caps/arches condition, condition holds) for an includes block."""
    if not isinstance(condition, dict):
        return False, True
    wanted_caps = condition.get("caps") or []
    wanted_arches = condition.get("arches") or []
    holds = all(c in caps for c in wanted_caps) and (not wanted_arches or goarch in wanted_arches)
    return bool(wanted_caps or wanted_arches), holds


def _excluded(condition: Any, caps: set[str], goarch: str) -> bool:
    if not isinstance(condition, dict):
        return False
    return any(c in caps for c in condition.get("caps") or []) or goarch in (condition.get("arches") or [])


def convert(
    document: dict[str, Any], capabilities: Iterable[str], machine: str, source: str
) -> dict[str, Any]:
    """A Docker- or OCI-format profile as OCI `linux.seccomp` for this machine and capability set."""
    goarch, native = _ARCHES.get(machine, (machine, "SCMP_ARCH_" + machine.upper()))
    caps = set(capabilities)
    default_action = document.get("defaultAction")
    if default_action not in _ACTIONS:
        raise InvalidArgument(
            f"seccomp profile {source}: defaultAction {default_action!r} is not a seccomp action"
        )
    result: dict[str, Any] = {"defaultAction": default_action}
    if "defaultErrnoRet" in document:
        result["defaultErrnoRet"] = int(document["defaultErrnoRet"])
    if document.get("archMap"):
        for entry in document["archMap"]:
            if entry.get("architecture") == native:
                result["architectures"] = [native, *(entry.get("subArchitectures") or [])]
    elif document.get("architectures"):
        result["architectures"] = list(document["architectures"])
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if document.get(key):
            result[key] = document[key]

    syscalls = []
    for index, rule in enumerate(document.get("syscalls") or []):
        if not isinstance(rule, dict):
            raise InvalidArgument(f"seccomp profile {source}: syscalls[{index}] is not an object")
        _, included = _matches(rule.get("includes"), caps, goarch)
        if not included or _excluded(rule.get("excludes"), caps, goarch):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            raise InvalidArgument(f"seccomp profile {source}: syscalls[{index}] names no syscall")
        action = rule.get("action")
        if action not in _ACTIONS:
            raise InvalidArgument(f"seccomp profile {source}: syscalls[{index}].action {action!r} is unknown")
        converted: dict[str, Any] = {"names": names, "action": action}
        if "errnoRet" in rule:
            converted["errnoRet"] = int(rule["errnoRet"])
        args = []
        for arg in rule.get("args") or []:
            if arg.get("op") not in _OPS:
                raise InvalidArgument(
                    f"seccomp profile {source}: syscalls[{index}] op {arg.get('op')!r} is unknown"
                )
            args.append(
                {
                    "index": int(arg.get("index", 0)),
                    "value": int(arg.get("value", 0)),
                    "valueTwo": int(arg.get("valueTwo", 0)),
                    "op": arg["op"],
                }
            )
        if args:
            converted["args"] = args
        syscalls.append(converted)
    result["syscalls"] = syscalls
    return result
