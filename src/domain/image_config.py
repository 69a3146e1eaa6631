"""Reading an OCI/Docker image config: what containers need from it, its layers' diff ids and chain ids."""

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from domain.errors import InvalidArgument
from domain.json_documents import load_json

_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ImageConfig:
    """What a container uses from its image's config (OCI image-spec `config`); the one word for it in the
    images and containers areas. An empty entrypoint means the image has none."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedConfig:
    config: ImageConfig
    diff_ids: tuple[str, ...]
    document: dict[str, Any]


def digest_hex(digest: str, what: str = "digest") -> str:
    """The hex of a `sha256:<hex>` digest; InvalidArgument for anything else."""
    algorithm, _, hex_part = digest.partition(":")
    if algorithm != "sha256" or len(hex_part) != 64 or not set(hex_part) <= _SHA256_HEX:
        raise InvalidArgument(f"{what} {digest!r} is not a sha256 digest")
    return hex_part


def chain_ids(diff_ids: tuple[str, ...] | list[str]) -> list[str]:
    """OCI image-spec ChainIDs: the first layer's is its diff id, each next one
    sha256 of "<chain below> <diff id>"."""
    chains: list[str] = []
    for diff_id in diff_ids:
        digest_hex(diff_id, "layer diff id")
        if not chains:
            chains.append(diff_id)
        else:
            chains.append("sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest())
    return chains


def parse_image_config(raw: bytes, config_digest: str) -> ParsedConfig:
    """Check that `raw` is the config `config_digest` names and read it; InvalidArgument when not."""
    expected = digest_hex(config_digest, "image config digest")
    if hashlib.sha256(raw).hexdigest() != expected:
        raise InvalidArgument(f"image config does not match its digest {config_digest}")
    document = load_json(raw, f"image config {config_digest}")
    if not isinstance(document, dict):
        raise InvalidArgument(f"image config {config_digest} is not a JSON object")
    rootfs = document.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidArgument(f"image config {config_digest} has no rootfs of type layers")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise InvalidArgument(f"image config {config_digest} has no list of diff ids")
    for diff_id in diff_ids:
        digest_hex(diff_id, "layer diff id")
    section = document.get("config") or {}
    if not isinstance(section, dict):
        raise InvalidArgument(f"image config {config_digest}: `config` is not an object")
    return ParsedConfig(_image_config(section), tuple(diff_ids), document)


def _image_config(section: dict[str, Any]) -> ImageConfig:
    volumes = section.get("Volumes") or {}
    labels = section.get("Labels") or {}
    return ImageConfig(
        user=_string(section.get("User")),
        env=_strings(section.get("Env")),
        entrypoint=_strings(section.get("Entrypoint")),
        cmd=_strings(section.get("Cmd")),
        working_dir=_string(section.get("WorkingDir")),
        volumes=tuple(sorted(str(v) for v in volumes)) if isinstance(volumes, dict) else (),
        stop_signal=_string(section.get("StopSignal")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
    )


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(item) for item in value)


def image_user(user: str) -> tuple[int | None, str]:
    """(uid, username) for the CRI Image message, as containerd and cri-o read USER: `uid[:gid]` gives the
    uid, `name[:group]` the username, nothing gives neither. A uid is what Go's ParseInt takes (a sign and
    ASCII digits within int64); anything else is a name, so that no image's USER can make ImageStatus or
    ListImages fail (a number past int64 fits no Int64Value)."""
    if not user:
        return None, ""
    name = user.split(":", 1)[0]
    if _INT64.fullmatch(name) and -(2**63) <= int(name) < 2**63:
        return int(name), ""
    return None, name


_INT64 = re.compile(r"[+-]?[0-9]{1,19}")
