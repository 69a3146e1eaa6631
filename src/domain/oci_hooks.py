"""OCI hooks from hook directories (cri-o's `hooks_dir`; the containers/common hook schema 1.0.0 and 0.1.0).

A hook file (`*.json`) names a program, the OCI stages it runs at, and `when` it applies: `always`,
`annotations` (regexes for key and value, matched against the container's and its pod's annotations),
`commands` (regexes against the container's first argument) and `hasBindMounts` (the container has CRI
mounts). In schema 1.0.0 every condition given must hold, except that `commands`, when given, decides on
its own (containers/common's rule); in 0.1.0 any one condition is enough. Matching hooks go into the spec
in the order of their file names (case-insensitive); `prestart` is added as `createRuntime`, where the
OCI runtime runs the deprecated prestart hooks anyway. Pure: the directories are read by the OciHooks port.
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.document_fields import boolean, fields, string_map, strings
from domain.errors import InvalidArgument

SCHEMA_VERSION = "1.0.0"
STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# The OCI stage each hook stage is added to.
_SPEC_STAGE = {"prestart": "createRuntime"}


@dataclass(frozen=True)
class OciHook:
    name: str  # the file name; a later directory's file of the same name replaces it
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None
    stages: tuple[str, ...] = ()
    always: bool | None = None
    annotations: tuple[tuple[str, str], ...] = ()  # (key regex, value regex)
    commands: tuple[str, ...] = ()
    has_bind_mounts: bool | None = None
    any_condition: bool = False  # schema 0.1.0: one matching condition is enough
    compiled: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)

    def oci(self) -> dict[str, Any]:
        return oci_hook(self.path, self.args, self.env, self.timeout)


def oci_hook(path: str, args: tuple[str, ...], env: tuple[str, ...], timeout: int | None) -> dict[str, Any]:
    """An OCI runtime-spec hook entry (only the fields that are set)."""
    entry: dict[str, Any] = {"path": path}
    if args:
        entry["args"] = list(args)
    if env:
        entry["env"] = list(env)
    if timeout is not None:
        entry["timeout"] = timeout
    return entry


def _regex(hook: OciHook, pattern: str, where: str) -> re.Pattern[str]:
    found = hook.compiled.get(pattern)
    if found is None:
        try:
            found = re.compile(pattern)
        except re.error as err:
            raise InvalidArgument(f"{where}: {pattern!r} is not a regular expression: {err}") from None
        hook.compiled[pattern] = found
    return found


def _one_of(raw: Mapping[str, Any], new: str, old: str) -> Any:
    if raw.get(new) is not None and raw.get(old) is not None:
        raise InvalidArgument(f"cannot set both {old!r} and {new!r}")
    return raw.get(new) if raw.get(new) is not None else raw.get(old)


def _from_v1(raw: Mapping[str, Any], name: str) -> OciHook:
    fields(raw, "hook file", {"version", "hook", "when", "stages"}, {"hook"})
    hook = fields(raw["hook"], "hook", {"path", "args", "env", "timeout"})
    when = fields(raw.get("when") or {}, "when", {"always", "annotations", "commands", "hasBindMounts"})
    annotations = string_map(when.get("annotations"), "when.annotations")
    timeout = hook.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0):
        raise InvalidArgument("hook.timeout: must be a positive number of seconds")
    if raw.get("stages") is None:
        raise InvalidArgument("missing required property: stages")
    return OciHook(
        name=name,
        path=str(hook.get("path") or ""),
        args=strings(hook.get("args"), "hook.args"),
        env=strings(hook.get("env"), "hook.env"),
        timeout=timeout,
        stages=strings(raw.get("stages"), "stages"),
        always=boolean(when.get("always"), "when.always"),
        annotations=tuple(sorted(annotations.items())),
        commands=strings(when.get("commands"), "when.commands"),
        has_bind_mounts=boolean(when.get("hasBindMounts"), "when.hasBindMounts"),
    )


def _from_v0(raw: Mapping[str, Any], name: str) -> OciHook:
    fields(raw, "hook file", {"version", "hook", "arguments", "stages", "stage", "cmds", "cmd",
                              "annotations", "annotation", "hasbindmounts"})  # fmt: skip
    path = raw.get("hook")
    if not isinstance(path, str):
        raise InvalidArgument("missing required property: hook")
    stages = _one_of(raw, "stages", "stage")
    if stages is None:
        raise InvalidArgument("missing required property: stages")
    arguments = strings(raw.get("arguments"), "arguments")
    annotations = strings(_one_of(raw, "annotations", "annotation"), "annotations")
    return OciHook(
        name=name,
        path=path,
        args=(path, *arguments) if raw.get("arguments") is not None else (),
        stages=strings(stages, "stages"),
        annotations=((".*", "|".join(annotations)),) if annotations else (),
        commands=strings(_one_of(raw, "cmds", "cmd"), "cmds"),
        has_bind_mounts=boolean(raw.get("hasbindmounts"), "hasbindmounts"),
        any_condition=True,
    )


def parse_hook(text: str, name: str) -> OciHook:
    """A hook file's contents, checked; InvalidArgument says what is wrong (the caller names the file)."""
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise InvalidArgument(f"not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise InvalidArgument("not a JSON object")
    version = raw.get("version", "")
    if version == SCHEMA_VERSION:
        hook = _from_v1(raw, name)
    elif version in ("", "0.1.0"):
        hook = _from_v0(raw, name)
    else:
        raise InvalidArgument(f"unrecognized hook version {version!r} (1.0.0 or 0.1.0)")
    if not hook.path.startswith("/"):
        raise InvalidArgument(f"hook.path: {hook.path!r} must be an absolute path")
    for stage in hook.stages:
        if stage not in STAGES:
            raise InvalidArgument(f"stages: unknown stage {stage!r}")
    for key, value in hook.annotations:
        _regex(hook, key, "when.annotations key")
        _regex(hook, value, "when.annotations value")
    for command in hook.commands:
        _regex(hook, command, "when.commands")
    return hook


def matches(hook: OciHook, command: str, annotations: Mapping[str, str], has_bind_mounts: bool) -> bool:
    """containers/common's When.Match: every given condition, or any one of them for schema 0.1.0."""
    hits = 0
    conditions: list[bool] = []
    if hook.always is not None:
        conditions.append(hook.always)
    if hook.has_bind_mounts is not None:
        conditions.append(hook.has_bind_mounts and has_bind_mounts)
    for key_pattern, value_pattern in hook.annotations:
        key_re = _regex(hook, key_pattern, "when.annotations key")
        value_re = _regex(hook, value_pattern, "when.annotations value")
        conditions.append(any(key_re.search(k) and value_re.search(v) for k, v in annotations.items()))
    for condition in conditions:
        if condition and hook.any_condition:
            return True
        if not condition and not hook.any_condition:
            return False
        hits += condition
    if hook.commands:
        return any(_regex(hook, pattern, "when.commands").search(command) for pattern in hook.commands)
    return hits > 0


@dataclass(frozen=True)
class HookSet:
    """What the hook directories hold right now: the valid hooks and the broken files (path, reason)."""

    hooks: tuple[OciHook, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()


def add_hooks(
    spec: dict[str, Any], hooks: Iterable[OciHook], annotations: Mapping[str, str], has_bind_mounts: bool
) -> None:
    """Add every matching hook to the spec (in place) at its stages, in file-name order."""
    args = spec.get("process", {}).get("args") or [""]
    for hook in sorted(hooks, key=lambda h: h.name.lower()):
        if not matches(hook, args[0], annotations, has_bind_mounts):
            continue
        for stage in hook.stages:
            spec.setdefault("hooks", {}).setdefault(_SPEC_STAGE.get(stage, stage), []).append(hook.oci())
