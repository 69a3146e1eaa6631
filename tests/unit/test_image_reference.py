"""Image reference parsing, checked against the cases docker's reference package documents."""

import pytest

from domain.errors import InvalidArgument
from domain.image_reference import ImageReference, check_digest, is_short_name, parse, qualify

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", ImageReference("docker.io", "library/busybox")),
        ("busybox:1.36", ImageReference("docker.io", "library/busybox", "1.36")),
        ("docker.io/busybox", ImageReference("docker.io", "library/busybox")),
        ("index.docker.io/busybox:x", ImageReference("docker.io", "library/busybox", "x")),
        ("docker.io/library/busybox", ImageReference("docker.io", "library/busybox")),
        ("team/app", ImageReference("docker.io", "team/app")),
        ("docker.io/team/app", ImageReference("docker.io", "team/app")),
        ("quay.io/app", ImageReference("quay.io", "app")),
        ("localhost/app", ImageReference("localhost", "app")),
        ("localhost:5000/a/b/c:v1", ImageReference("localhost:5000", "a/b/c", "v1")),
        ("127.0.0.1:5000/app", ImageReference("127.0.0.1:5000", "app")),
        (f"127.0.0.1:5000/app@{DIGEST}", ImageReference("127.0.0.1:5000", "app", "", DIGEST)),
        (f"app:v2@{DIGEST}", ImageReference("docker.io", "library/app", "v2", DIGEST)),
        (
            "my-reg.example.com/a_b/c.d/e__f/g-h:T_1.x-y",
            ImageReference("my-reg.example.com", "a_b/c.d/e__f/g-h", "T_1.x-y"),
        ),
        ("Example.COM/app", ImageReference("Example.COM", "app")),
        ("[::1]:5000/app:v", ImageReference("[::1]:5000", "app", "v")),
    ],
)
def test_parse_normalises(text: str, expected: ImageReference) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("quay.io/Team/app", "lowercase"),
        ("busybox:", "invalid tag"),
        ("busybox:-x", "invalid tag"),
        ("busybox:" + "a" * 129, "invalid tag"),
        ("busybox@sha256:abc", "digest"),
        ("busybox@sha256:" + "AB" * 32, "lowercase hex"),
        ("busybox@md5:" + "ab" * 16, "unsupported digest algorithm"),
        ("busybox@" + "ab" * 32, "digest"),
        ("a" * 64, "64-byte hexadecimal"),
        ("quay.io/", "at least one component"),
        ("quay.io/app//x", "invalid repository name"),
        ("quay.io/app/", "invalid repository name"),
        ("quay.io/-app", "invalid repository name"),
        ("quay.io/app.", "invalid repository name"),
        ("-bad.io/app", "invalid registry host"),
        ("bad.io:port/app", "invalid registry host"),
        ("quay.io/" + "a" * 250, "255"),
        ("busy box", "invalid repository name"),
        ("busybox:1:2", "invalid repository name"),
    ],
)
def test_parse_refuses_malformed_names(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse(text)
    assert fragment in str(err.value)


def test_str_round_trips_the_qualified_form() -> None:
    for text in ["quay.io/app:v1", f"127.0.0.1:5000/a/b@{DIGEST}", f"docker.io/library/app:v2@{DIGEST}"]:
        assert str(parse(text)) == text


def test_for_pull_prefers_the_digest_and_defaults_the_tag() -> None:
    assert str(parse("busybox").for_pull()) == "docker.io/library/busybox:latest"
    assert str(parse(f"busybox:v1@{DIGEST}").for_pull()) == f"docker.io/library/busybox@{DIGEST}"
    assert str(parse("quay.io/a:v1").for_pull()) == "quay.io/a:v1"


def test_familiar_form_drops_docker_hub_prefixes() -> None:
    assert parse("busybox:1").familiar == "busybox:1"
    assert parse("team/app").familiar == "team/app"
    assert parse("quay.io/app:1").familiar == "quay.io/app:1"


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("busybox", True),
        ("team/app", True),
        ("a/b/c:1", True),
        ("localhost/x", False),
        ("quay.io/x", False),
        ("host:5000/x", False),
        ("host/x", True),
    ],
)
def test_short_names(text: str, short: bool) -> None:
    assert is_short_name(text) is short


def test_qualify_applies_the_docker_hub_library_rule_only_to_docker_hub() -> None:
    assert qualify("busybox", "docker.io") == ImageReference("docker.io", "library/busybox")
    assert qualify("busybox:1", "quay.io") == ImageReference("quay.io", "busybox", "1")
    assert qualify("busybox", "127.0.0.1:5000") == ImageReference("127.0.0.1:5000", "busybox")
    with pytest.raises(InvalidArgument):
        qualify("quay.io/busybox", "docker.io")


def test_check_digest() -> None:
    assert check_digest(DIGEST) == DIGEST
    assert check_digest("sha512:" + "0" * 128).startswith("sha512:")
    for bad in ["sha256:" + "0" * 63, "sha256", "", "sha512:" + "0" * 64]:
        with pytest.raises(InvalidArgument):
            check_digest(bad)
