"""Hostile pod sandbox requests and documents: refused with InvalidArgument naming the field, before
anything is made; values that reach CNI or JSON parsers cannot smuggle anything in."""

import hashlib
import json
from dataclasses import replace

import pytest

from adapters.cni.invoke import cni_args_text
from adapters.host.files import RealHostFiles
from domain.errors import InvalidArgument
from domain.image_config import parse_image_config
from domain.sandbox_model import SandboxMetadata
from domain.sandbox_validation import validated
from domain.seccomp import from_profile_text
from tests.unit.test_sandboxes import World, pod


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        (
            SandboxMetadata("x;IP=10.85.7.77", "u", "ns"),
            "metadata.name 'x;IP=10.85.7.77' is not a valid name",
        ),
        (SandboxMetadata("web", "u", "ns;K8S_POD_NAME=a"), "metadata.namespace"),
        (SandboxMetadata("web", "u=1", "ns"), "metadata.uid"),
        (SandboxMetadata("web", "u", "my_ns"), "metadata.namespace"),
        (SandboxMetadata("a" * (1 << 20), "u", "ns"), "metadata.name: 1048576 characters"),
        (SandboxMetadata("web", "u", "n" * 64), "metadata.namespace: 64 characters"),
        (SandboxMetadata("-web", "u", "ns"), "metadata.name"),
        (SandboxMetadata("w eb", "u", "ns"), "metadata.name"),
    ],
)
def test_names_are_what_kubernetes_accepts(metadata: SandboxMetadata, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        validated(replace(pod(), metadata=metadata))


def test_kubernetes_names_pass() -> None:
    validated(
        replace(
            pod(), metadata=SandboxMetadata("web-0.a", "9b2e5c4e-1d2f-4c1e-8a7b-0c1d2e3f4a5b", "kube-system")
        )
    )
    validated(
        replace(pod(), metadata=SandboxMetadata("PodSandbox-for-critest", "hdishd83djaidwnduwk28bcsb", "ns"))
    )


@pytest.mark.parametrize(
    "log_directory",
    ["/proc/sys/kernel", "/proc", "/sys/fs/cgroup/x", "/dev/x", "/", "//", "relative/dir", "/var/log/../etc",
     "/var/./log", "/" + "a" * 5000],
)  # fmt: skip
def test_log_directories_that_are_no_place_for_logs(log_directory: str) -> None:
    with pytest.raises(InvalidArgument, match="log_directory"):
        validated(replace(pod(), log_directory=log_directory))


def test_a_refused_pod_leaves_nothing() -> None:
    world = World()
    with pytest.raises(InvalidArgument):
        world.svc.run(replace(pod(), log_directory="/proc/sys/x"))
    assert world.leftovers() == []
    assert world.files.log_directories == set()


@pytest.mark.parametrize("value", ["x;IP=10.85.7.77", "a=b", "nul\0", "new\nline"])
def test_cni_args_cannot_carry_another_argument(value: str) -> None:
    with pytest.raises(InvalidArgument, match="CNI_ARGS"):
        cni_args_text([("IgnoreUnknown", "1"), ("K8S_POD_NAME", value)])
    assert cni_args_text([("K8S_POD_NAME", "web-0")]) == "K8S_POD_NAME=web-0"


def test_an_image_config_nested_100k_deep_is_invalid() -> None:
    raw = b'{"rootfs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        parse_image_config(raw, "sha256:" + hashlib.sha256(raw).hexdigest())


def test_a_seccomp_profile_nested_deep_or_not_utf8_is_invalid(tmp_path: object) -> None:
    with pytest.raises(InvalidArgument, match="seccomp profile p: not valid JSON"):
        from_profile_text("[" * 100_000, (), "x86_64", "p")
    profile = tmp_path / "latin1.json"  # type: ignore[operator]
    profile.write_bytes(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}).encode() + b"\xff")
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        RealHostFiles().read_text(str(profile))
