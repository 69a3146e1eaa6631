"""Manifest parsing and platform choice."""

import json

import pytest

from domain.errors import Internal, InvalidArgument
from domain.manifests import (
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageIndex,
    ImageManifest,
    choose_platform,
    layer_compression,
    media_type_of,
    normalize_platform,
    parse_manifest,
)
from ports.registry import Platform

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64
F = "sha256:" + "c" * 64


def index(*entries: tuple[str, dict[str, str] | None]) -> ImageIndex:
    manifests = []
    for digest, platform in entries:
        entry: dict[str, object] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 10}
        if platform is not None:
            entry["platform"] = platform
        manifests.append(entry)
    parsed = parse_manifest(json.dumps({"schemaVersion": 2, "manifests": manifests}).encode(), OCI_INDEX)
    assert isinstance(parsed, ImageIndex)
    return parsed


def test_manifest_parses_config_and_layers() -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 3},
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                    "digest": E,
                    "size": 5,
                    "annotations": {"k": "v"},
                }
            ],
        }
    ).encode()
    assert media_type_of(body, "") == OCI_MANIFEST
    parsed = parse_manifest(body, OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest)
    assert parsed.config.digest == D
    assert parsed.layers[0].annotations == {"k": "v"}
    assert layer_compression(parsed.layers[0].media_type) == "zstd"


def test_media_type_prefers_the_document_then_the_header() -> None:
    assert (
        media_type_of(b'{"schemaVersion":2,"mediaType":"%s","manifests":[]}' % OCI_INDEX.encode(), "x")
        == OCI_INDEX
    )
    assert media_type_of(b'{"schemaVersion":2,"manifests":[]}', DOCKER_MANIFEST_LIST + "; charset=utf-8") == (
        DOCKER_MANIFEST_LIST
    )
    assert media_type_of(b'{"schemaVersion":2,"manifests":[]}', "application/json") == OCI_INDEX


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"schemaVersion": 3, "layers": []}',
        b'{"schemaVersion": 2, "config": {}, "layers": []}',
        b'{"schemaVersion": 2, "config": {"digest": "sha256:1", "size": 1}, "layers": []}',
        b'{"schemaVersion": 2, "config": {"digest": "%s", "size": -1}, "layers": []}' % D.encode(),
    ],
)
def test_broken_manifests_are_internal(body: bytes) -> None:
    with pytest.raises(Internal):
        parse_manifest(body, OCI_MANIFEST)


def test_unknown_layer_media_type_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        layer_compression("application/vnd.cncf.helm.chart.content.v1.tar+gzip")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (Platform("linux", "x86_64", ""), Platform("linux", "amd64", "")),
        (Platform("linux", "aarch64", ""), Platform("linux", "arm64", "v8")),
        (Platform("linux", "arm64", "8"), Platform("linux", "arm64", "v8")),
        (Platform("Linux", "ARM", ""), Platform("linux", "arm", "v7")),
        (Platform("linux", "armhf", ""), Platform("linux", "arm", "v7")),
        (Platform("linux", "i386", ""), Platform("linux", "386", "")),
    ],
)
def test_platform_normalisation(raw: Platform, normal: Platform) -> None:
    assert normalize_platform(raw) == normal


def test_choose_platform_prefers_the_exact_variant() -> None:
    choice = index(
        (D, {"os": "linux", "architecture": "arm"}),
        (E, {"os": "linux", "architecture": "arm", "variant": "v6"}),
        (F, {"os": "linux", "architecture": "amd64"}),
    )
    assert choose_platform(choice, Platform("linux", "arm", "v6")).digest == E
    assert choose_platform(choice, Platform("linux", "arm", "v7")).digest == D
    assert choose_platform(choice, Platform("linux", "amd64", "")).digest == F


def test_choose_platform_skips_entries_without_platform_and_reports_what_is_offered() -> None:
    choice = index((D, None), (E, {"os": "linux", "architecture": "arm64", "variant": "v8"}))
    assert choose_platform(choice, Platform("linux", "arm64", "")).digest == E
    with pytest.raises(LookupError, match=r"linux/amd64 \(the index offers linux/arm64/v8\)"):
        choose_platform(choice, Platform("linux", "amd64", ""))
    with pytest.raises(LookupError):
        choose_platform(
            index((D, {"os": "windows", "architecture": "amd64"})), Platform("linux", "amd64", "")
        )


def test_host_platform_is_normalised() -> None:
    from adapters.registry.host_platform import host_platform

    platform = host_platform()
    assert platform.os == "linux"
    assert platform == normalize_platform(platform)
