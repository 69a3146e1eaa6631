"""A small in-memory Registry for the image service's tests: images by name, blobs by digest.

It resolves names as the real adapter does for the parts the image service sees (short names go to
docker.io, a digest reference keeps no tag), verifies blob digests while streaming, counts downloads, and
can hold a blob mid-stream until a test lets it go (to see pulls share a download or stall).
"""

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from domain import image_reference
from domain.errors import Internal, NotFound
from ports.registry import Descriptor, Platform, RegistryAuth, ResolvedImage
from ports.signatures import SigstoreSignature
from tests.layer_tars import Layer, digest, image_config

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class StoredImage:
    config: bytes
    layers: list[Layer]
    manifest: bytes = b""

    @property
    def config_digest(self) -> str:
        return digest(self.config)


@dataclass
class Gate:
    """Stops a blob's stream after its first chunk until `release` is set."""

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class SmallRegistry:
    def __init__(self) -> None:
        self.images: dict[str, StoredImage] = {}
        self.blobs: dict[str, bytes] = {}
        self.blob_downloads: dict[str, int] = {}
        self.resolves = 0
        self.gates: dict[str, Gate] = {}
        # Sigstore attachments by manifest digest.
        self.attachments: dict[str, list[SigstoreSignature]] = {}
        # Signatures served through the registry's signature API, by manifest digest; None: no such API.
        self.extension: dict[str, list[bytes]] | None = None
        self.chunk_size = 4096
        self._lock = threading.Lock()

    def add(
        self, name: str, layers: list[Layer], config: dict[str, object] | None = None, salt: str = ""
    ) -> StoredImage:
        """Serve an image under `name` (a tag reference) and under `name@<manifest digest>`."""
        raw_config = image_config(layers, config, salt)
        manifest = b'{"config":"%s","layers":[%s]}' % (
            digest(raw_config).encode(),
            b",".join(b'"%s"' % layer.descriptor.digest.encode() for layer in layers),
        )
        stored = StoredImage(raw_config, layers, manifest)
        ref = image_reference.parse(name)
        self.images[f"{ref.name}:{ref.tag or 'latest'}"] = stored
        self.images[f"{ref.name}@{digest(manifest)}"] = stored
        for layer in layers:
            self.blobs[layer.descriptor.digest] = layer.blob
        return stored

    def resolve(self, image: str, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        with self._lock:
            self.resolves += 1
        ref = image_reference.parse(image).for_pull()
        key = f"{ref.name}@{ref.digest}" if ref.digest else f"{ref.name}:{ref.tag}"
        stored = self.images.get(key)
        if stored is None:
            raise NotFound(f"{image}: manifest unknown")
        return ResolvedImage(
            name=ref.name,
            tag=ref.tag,
            manifest_digest=digest(stored.manifest),
            manifest_media_type=MANIFEST_TYPE,
            manifest=stored.manifest,
            config_digest=stored.config_digest,
            config=stored.config,
            layers=[layer.descriptor for layer in stored.layers],
            source=ref.registry,
        )

    def open_blob(self, image: ResolvedImage, blob: Descriptor, auth: RegistryAuth | None) -> Iterator[bytes]:
        data = self.blobs.get(blob.digest)
        if data is None:
            raise NotFound(f"blob {blob.digest} unknown")
        with self._lock:
            self.blob_downloads[blob.digest] = self.blob_downloads.get(blob.digest, 0) + 1
        return self._stream(blob, data)

    def extension_signatures(self, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes] | None:
        if self.extension is None:
            return None
        return list(self.extension.get(image.index_digest or image.manifest_digest, []))

    def signature_attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> list[SigstoreSignature]:
        return list(self.attachments.get(image.index_digest or image.manifest_digest, []))

    def _stream(self, blob: Descriptor, data: bytes) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        for offset in range(0, max(len(data), 1), self.chunk_size):
            chunk = data[offset : offset + self.chunk_size]
            hasher.update(chunk)
            yield chunk
            gate = self.gates.get(blob.digest)
            if gate is not None and offset == 0:
                gate.reached.set()
                gate.release.wait(30)
        if "sha256:" + hasher.hexdigest() != blob.digest:
            raise Internal(f"blob {blob.digest}: digest mismatch")
