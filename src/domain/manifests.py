"""Image manifests and indexes (Docker v2 schema 2 and OCI), and picking one platform out of an index.

Pure: JSON bytes in, descriptors out. Errors are Internal because the content came from a registry and
is broken, not because the request was wrong.
"""

from dataclasses import dataclass
from typing import Any

from domain.errors import Internal, InvalidArgument
from domain.image_reference import check_digest
from domain.json_documents import load_json
from ports.registry import Descriptor, Platform

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
# What pycrio asks registries for, best first.
ACCEPTED = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

LAYER_MEDIA_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
}


def layer_compression(media_type: str) -> str:
    """`gzip`, `zstd` or `none` for a layer media type; InvalidArgument for anything else."""
    try:
        return LAYER_MEDIA_TYPES[media_type]
    except KeyError:
        raise InvalidArgument(f"unsupported layer media type {media_type!r}") from None


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


@dataclass(frozen=True)
class IndexEntry:
    descriptor: Descriptor
    platform: Platform | None


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: list[IndexEntry]


def media_type_of(body: bytes, content_type: str) -> str:
    """The manifest's media type: its own `mediaType` field, else the Content-Type the registry sent."""
    document = _load(body)
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    content_type = content_type.split(";")[0].strip()
    if content_type in (*ACCEPTED, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        return content_type
    # An OCI document without mediaType: an index has `manifests`, an image manifest has `config`.
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document:
        return OCI_MANIFEST
    if document.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1
    raise Internal(f"manifest of unknown type (Content-Type {content_type!r})")


def parse_manifest(body: bytes, media_type: str) -> ImageManifest | ImageIndex:
    if media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise Internal("Docker schema 1 manifests are not supported; push the image with schema 2 or OCI")
    document = _load(body)
    if document.get("schemaVersion") != 2:
        raise Internal(f"manifest schemaVersion {document.get('schemaVersion')!r} is not 2")
    if media_type in INDEXES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise Internal("index without a manifests list")
        return ImageIndex(media_type, [_index_entry(entry) for entry in entries])
    if media_type in IMAGE_MANIFESTS:
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise Internal("manifest without a layers list")
        return ImageManifest(
            media_type, _descriptor(document.get("config")), [_descriptor(x) for x in layers]
        )
    raise Internal(f"unsupported manifest media type {media_type!r}")


def normalize_platform(platform: Platform) -> Platform:
    """containerd's normalisation: aliases of an architecture compare equal, default variants are filled."""
    os_name = platform.os.lower() or "linux"
    arch = platform.architecture.lower()
    variant = platform.variant.lower()
    if arch in ("i386",):
        arch = "386"
    elif arch in ("x86_64", "x86-64"):
        arch, variant = "amd64", ""
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        if variant in ("8", "v8", ""):
            variant = "v8"
    elif arch == "armhf":
        arch, variant = "arm", "v7"
    elif arch == "armel":
        arch, variant = "arm", "v6"
    elif arch == "arm":
        variant = {"": "v7", "5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(variant, variant)
    return Platform(os_name, arch, variant)


def choose_platform(index: ImageIndex, want: Platform) -> Descriptor:
    """The manifest of `index` for `want`; an entry without a variant matches any variant of its arch.

    An exact variant match wins over an entry that names no variant. NotFound-worthy absence is reported
    by returning nothing through LookupError, which callers turn into their own NotFound message.
    """
    wanted = normalize_platform(want)
    fallback: Descriptor | None = None
    for entry in index.manifests:
        if entry.platform is None or entry.descriptor.media_type not in (*IMAGE_MANIFESTS, ""):
            continue
        offered = normalize_platform(entry.platform)
        if (offered.os, offered.architecture) != (wanted.os, wanted.architecture):
            continue
        if offered.variant == wanted.variant:
            return entry.descriptor
        if fallback is None and not entry.platform.variant:
            fallback = entry.descriptor
    if fallback is not None:
        return fallback
    offered_list = ", ".join(
        sorted(_platform_text(e.platform) for e in index.manifests if e.platform is not None)
    )
    raise LookupError(f"no manifest for {_platform_text(wanted)} (the index offers {offered_list or 'none'})")


def _platform_text(platform: Platform) -> str:
    text = f"{platform.os}/{platform.architecture}"
    return f"{text}/{platform.variant}" if platform.variant else text


def _load(body: bytes) -> dict[str, Any]:
    document = load_json(body, "manifest", Internal)
    if not isinstance(document, dict):
        raise Internal("manifest is not a JSON object")
    return document


def _descriptor(raw: Any) -> Descriptor:
    if not isinstance(raw, dict):
        raise Internal("descriptor is not an object")
    digest, size, media_type = raw.get("digest"), raw.get("size"), raw.get("mediaType", "")
    if not isinstance(digest, str) or not isinstance(media_type, str):
        raise Internal(f"descriptor with a bad digest or mediaType: {raw!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise Internal(f"descriptor {digest} has no valid size")
    try:
        check_digest(digest)
    except InvalidArgument as err:
        raise Internal(f"descriptor: {err}") from None
    annotations = raw.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise Internal(f"descriptor {digest} has bad annotations")
    return Descriptor(media_type, digest, size, {str(k): str(v) for k, v in annotations.items()})


def _index_entry(raw: Any) -> IndexEntry:
    descriptor = _descriptor(raw)
    platform = raw.get("platform")
    if not isinstance(platform, dict):
        return IndexEntry(descriptor, None)
    return IndexEntry(
        descriptor,
        Platform(
            str(platform.get("os", "")),
            str(platform.get("architecture", "")),
            str(platform.get("variant", "")),
        ),
    )
