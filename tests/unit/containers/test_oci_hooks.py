"""OCI hook files: the 1.0.0 and 0.1.0 schemas, containers/common's `when` rules, stages in the spec."""

import json
from typing import Any

import pytest

from domain.container_config import ContainerConfig, Mount, SandboxFacts
from domain.errors import InvalidArgument
from domain.oci_hooks import OciHook, matches, parse_hook
from domain.oci_spec import build_spec
from tests.unit.containers.test_oci_spec import SANDBOX, inputs


def hook_text(when: dict[str, Any] | None = None, stages: list[str] | None = None, **hook: Any) -> str:
    return json.dumps({"version": "1.0.0", "hook": {"path": "/usr/bin/marker", **hook},
                       "when": when if when is not None else {"always": True},
                       "stages": stages or ["prestart"]})  # fmt: skip


def hook(name: str = "10-marker.json", **fields: Any) -> OciHook:
    return parse_hook(hook_text(**fields), name)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"version": "2.0.0"}', "unrecognized hook version"),
        (json.dumps({"version": "1.0.0", "when": {}, "stages": ["prestart"]}), "hook"),
        (json.dumps({"version": "1.0.0", "hook": {"path": "/x"}, "when": {}}), "stages"),
        (hook_text(stages=["sometime"]), "unknown stage 'sometime'"),
        (hook_text(when={"commands": ["("]}), "not a regular expression"),
        (hook_text(when={"annotations": {"a": "["}}), "not a regular expression"),
        (hook_text(when={"sometimes": True}), "unknown field 'sometimes'"),
        (hook_text(timeout=0), "positive"),
        (json.dumps({"version": "1.0.0", "hook": {"path": "relative"}, "when": {}, "stages": ["poststop"]}),
         "absolute"),
    ],
)  # fmt: skip
def test_broken_hook_files_say_why(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_hook(text, "x.json")


def test_every_given_condition_must_hold() -> None:
    both = hook(when={"annotations": {r"^io\.example\.trace$": "^on$"}, "hasBindMounts": True})
    assert matches(both, "/bin/sh", {"io.example.trace": "on"}, has_bind_mounts=True)
    assert not matches(both, "/bin/sh", {"io.example.trace": "on"}, has_bind_mounts=False)
    assert not matches(both, "/bin/sh", {"io.example.trace": "off"}, has_bind_mounts=True)
    assert not matches(hook(when={}), "/bin/sh", {}, has_bind_mounts=True), "no condition, no match"
    assert not matches(hook(when={"always": False}), "/bin/sh", {}, has_bind_mounts=True)


def test_commands_decide_on_their_own_once_the_other_conditions_hold() -> None:
    by_command = hook(when={"commands": [r"/sleep$"]})
    assert matches(by_command, "/bin/sleep", {}, has_bind_mounts=False)
    assert not matches(by_command, "/bin/sh", {}, has_bind_mounts=False)
    gated = hook(when={"always": False, "commands": [".*"]})
    assert not matches(gated, "/bin/sh", {}, has_bind_mounts=False)


def test_schema_0_1_0_matches_on_any_one_condition() -> None:
    old = parse_hook(json.dumps({"hook": "/usr/bin/marker", "arguments": ["a"], "stage": ["prestart"],
                                 "annotation": ["^gpu$"], "cmd": ["nvidia"]}), "old.json")  # fmt: skip
    assert old.args == ("/usr/bin/marker", "a")
    assert matches(old, "/bin/sh", {"any.key": "gpu"}, has_bind_mounts=False)
    assert matches(old, "/usr/bin/nvidia-smi", {}, has_bind_mounts=False)
    assert not matches(old, "/bin/sh", {"any.key": "cpu"}, has_bind_mounts=False)
    with pytest.raises(InvalidArgument, match="both"):
        parse_hook(json.dumps({"hook": "/x", "stage": ["prestart"], "stages": ["poststop"]}), "y.json")


def test_matching_hooks_go_to_their_stages_in_file_name_order() -> None:
    hooks = (
        hook(
            "B.json", path="/usr/bin/second", stages=["prestart", "poststop"], args=["second", "1"], timeout=5
        ),
        hook("a.json", path="/usr/bin/first", stages=["createContainer", "startContainer", "poststart"]),
        hook("c.json", path="/usr/bin/never", when={"annotations": {"never": ".*"}}),
    )
    spec = build_spec(inputs(oci_hooks=hooks))
    assert spec["hooks"] == {
        "createContainer": [{"path": "/usr/bin/first"}],
        "startContainer": [{"path": "/usr/bin/first"}],
        "poststart": [{"path": "/usr/bin/first"}],
        "createRuntime": [{"path": "/usr/bin/second", "args": ["second", "1"], "timeout": 5}],
        "poststop": [{"path": "/usr/bin/second", "args": ["second", "1"], "timeout": 5}],
    }


def test_annotations_of_the_container_and_the_pod_and_cri_mounts_count() -> None:
    by_pod = (hook(when={"annotations": {"^pod-level$": "^yes$"}}),)
    with_pod = SandboxFacts(**{**SANDBOX.__dict__, "annotations": (("pod-level", "yes"),)})
    assert "hooks" in build_spec(inputs(sandbox=with_pod, oci_hooks=by_pod))
    assert "hooks" not in build_spec(inputs(oci_hooks=by_pod))
    by_container = (hook(when={"annotations": {"^ctr$": "."}}),)
    config = ContainerConfig(name="c", command=("/bin/true",), annotations={"ctr": "1"})
    assert "hooks" in build_spec(inputs(config, oci_hooks=by_container))
    binds = (hook(when={"hasBindMounts": True}),)
    mounted = ContainerConfig(name="c", command=("/bin/true",), mounts=(Mount("/data", "/data"),))
    assert "hooks" in build_spec(inputs(mounted, oci_hooks=binds, mount_sources={"/data": "/data"}))
    assert "hooks" not in build_spec(inputs(oci_hooks=binds))
