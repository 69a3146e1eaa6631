"""containers-policy.json(5) parsing, scope choice and signedIdentity matching (pure domain logic)."""

import json

import pytest

from domain.errors import InvalidArgument
from domain.image_reference import parse
from domain.registries_d import RegistriesD, parse_registries_d, signature_url
from domain.trust_policy import (
    SIMPLE_SIGNING_TYPE,
    PayloadError,
    PolicyError,
    SignedIdentity,
    check_claim,
    parse_policy,
    parse_signed_payload,
    policy_scopes,
)

DIGEST = "sha256:" + "ab" * 32
KEY = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}


def policy(default: list[dict[str, object]] | None = None, **scopes: list[dict[str, object]]) -> str:
    document: dict[str, object] = {"default": default or [{"type": "reject"}]}
    if scopes:
        document["transports"] = {"docker": {k.replace("__", "/"): v for k, v in scopes.items()}}
    return json.dumps(document)


def test_scopes_go_from_the_exact_name_to_wildcard_hosts() -> None:
    assert policy_scopes(parse("registry.example.com:5000/team/app:1")) == [
        "registry.example.com:5000/team/app:1",
        "registry.example.com:5000/team/app",
        "registry.example.com:5000/team",
        "registry.example.com:5000",
        "*.example.com",
        "*.com",
    ]


@pytest.mark.parametrize(
    ("reference", "scope"),
    [
        ("reg.example.com/team/app:1", "reg.example.com/team/app:1"),
        ("reg.example.com/team/app:2", "reg.example.com/team/app"),
        ("reg.example.com/team/other:1", "reg.example.com/team"),
        ("reg.example.com/x:1", "reg.example.com"),
        ("other.example.com/x:1", "*.example.com"),
        ("elsewhere.org/x:1", 'transports.docker[""]'),
    ],
)
def test_the_most_specific_scope_wins(reference: str, scope: str) -> None:
    text = json.dumps(
        {
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {
                    "reg.example.com/team/app:1": [{"type": "insecureAcceptAnything"}],
                    "reg.example.com/team/app": [KEY],
                    "reg.example.com/team": [{"type": "reject"}],
                    "reg.example.com": [{"type": "insecureAcceptAnything"}],
                    "*.example.com": [{"type": "reject"}],
                    "": [{"type": "reject"}],
                },
                "atomic": {"whatever": [{"type": "insecureAcceptAnything"}]},
            },
        }
    )
    assert parse_policy(text).requirements_for(parse(reference))[0] == scope


def test_without_a_matching_scope_the_default_decides() -> None:
    chosen = parse_policy(policy([{"type": "insecureAcceptAnything"}])).requirements_for(parse("busybox"))
    assert chosen[0] == "default" and chosen[1][0].type == "insecureAcceptAnything"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON"),
        ("{}", "missing field default"),
        ('{"default": []}', "must not be empty"),
        ('{"default": [{"type": "reject"}], "extra": 1}', "unknown field extra"),
        ('{"default": [{"type": "reject", "keyPath": "/k"}]}', "unknown field keyPath"),
        ('{"default": [{"type": "acceptSomething"}]}', "unknown requirement type"),
        ('{"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}', "exactly one of keyPath"),
        (
            '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a", "keyData": "eA=="}]}',
            "only one of",
        ),
        (
            '{"default": [{"type": "signedBy", "keyType": "X509Certificates", "keyPath": "/a"}]}',
            "not supported",
        ),
        ('{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "!!"}]}', "invalid base64"),
        ('{"default": [{"type": "sigstoreSigned"}]}', "exactly one of a public key"),
        (
            '{"default": [{"type": "sigstoreSigned", "fulcio": {"caPath": "/ca", "oidcIssuer": "i", '
            '"subjectEmail": "e"}}]}',
            "requires a Rekor public key",
        ),
        ('{"default": [{"type": "sigstoreSigned", "keyPath": "/k", "pki": {}}]}', "pki"),
        (
            '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k", '
            '"signedIdentity": {"type": "exactReference", "dockerReference": "busybox"}}]}',
            "neither a tag nor a digest",
        ),
        (
            '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k", '
            '"signedIdentity": {"type": "remapIdentity", "prefix": "a b", "signedPrefix": "x.io"}}]}',
            "not a valid prefix",
        ),
        (
            '{"default": [{"type": "reject"}], "transports": {"docker": {"*.a/b": [{"type": "reject"}]}}}',
            "wildcard",
        ),
        ('{"default": [{"type": "reject"}], "default": [{"type": "reject"}]}', "duplicate key"),
    ],
)
def test_a_broken_policy_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_key_data_is_base64_and_paths_are_kept() -> None:
    parsed = parse_policy(
        json.dumps(
            {
                "default": [
                    {"type": "signedBy", "keyType": "GPGKeys", "keyData": "a2V5"},
                    {"type": "sigstoreSigned", "keyPaths": ["/a.pub", "/b.pub"]},
                ]
            }
        )
    )
    assert parsed.default[0].keys is not None and parsed.default[0].keys.data == (b"key",)
    assert parsed.default[1].keys is not None and parsed.default[1].keys.paths == ("/a.pub", "/b.pub")


# -- signedIdentity ------------------------------------------------------------------------------------------

TAGGED = parse("reg.io/team/app:1")
DIGESTED = parse(f"reg.io/team/app@{DIGEST}")


@pytest.mark.parametrize(
    ("identity", "intended", "signed", "accepted"),
    [
        (SignedIdentity("matchRepoDigestOrExact"), TAGGED, "reg.io/team/app:1", True),
        (SignedIdentity("matchRepoDigestOrExact"), TAGGED, "reg.io/team/app:2", False),
        (SignedIdentity("matchRepoDigestOrExact"), DIGESTED, "reg.io/team/app:any", True),
        (SignedIdentity("matchRepoDigestOrExact"), DIGESTED, "reg.io/team/other:any", False),
        (SignedIdentity("matchRepoDigestOrExact"), TAGGED, "reg.io/team/app", False),
        (SignedIdentity("matchExact"), TAGGED, "reg.io/team/app:1", True),
        (SignedIdentity("matchExact"), DIGESTED, "reg.io/team/app:1", False),
        (SignedIdentity("matchRepository"), TAGGED, "reg.io/team/app:9", True),
        (SignedIdentity("matchRepository"), TAGGED, "reg.io/team/other:1", False),
        (SignedIdentity("exactReference", reference="other.io/x:2"), TAGGED, "other.io/x:2", True),
        (SignedIdentity("exactReference", reference="other.io/x:2"), TAGGED, "reg.io/team/app:1", False),
        (SignedIdentity("exactRepository", reference="other.io/x"), TAGGED, "other.io/x:7", True),
        (SignedIdentity("exactRepository", reference="other.io/x"), TAGGED, "reg.io/team/app:1", False),
        (
            SignedIdentity("remapIdentity", prefix="reg.io/team", signed_prefix="up.io/t"),
            TAGGED,
            "up.io/t/app:1",
            True,
        ),
        (
            SignedIdentity("remapIdentity", prefix="reg.io/team", signed_prefix="up.io/t"),
            TAGGED,
            "reg.io/team/app:1",
            False,
        ),
        (
            SignedIdentity("remapIdentity", prefix="mirror.io", signed_prefix="up.io"),
            TAGGED,
            "reg.io/team/app:1",
            True,
        ),
        (SignedIdentity("matchRepoDigestOrExact"), TAGGED, "not a reference", False),
    ],
)
def test_signed_identity_kinds(
    identity: SignedIdentity, intended: object, signed: str, accepted: bool
) -> None:
    assert identity.accepts(intended, signed) is accepted  # type: ignore[arg-type]


# -- payloads -----------------------------------------------------------------------------------------------


def payload(
    digest: str = DIGEST, reference: str = "reg.io/team/app:1", kind: str = SIMPLE_SIGNING_TYPE
) -> bytes:
    return json.dumps(
        {
            "critical": {
                "type": kind,
                "image": {"docker-manifest-digest": digest},
                "identity": {"docker-reference": reference},
            },
            "optional": {"creator": "x"},
        }
    ).encode()


def test_a_claim_must_name_the_manifest_and_an_accepted_identity() -> None:
    claim = parse_signed_payload(payload(), SIMPLE_SIGNING_TYPE)
    assert check_claim(claim, DIGEST, TAGGED, SignedIdentity()) == ""
    assert "does not match the manifest" in check_claim(
        claim, "sha256:" + "cd" * 32, TAGGED, SignedIdentity()
    )
    assert "not accepted" in check_claim(claim, DIGEST, parse("reg.io/team/app:2"), SignedIdentity())


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        payload(kind="cosign container image signature"),
        json.dumps({"critical": {}, "optional": {}}).encode(),
        payload().replace(b'"optional"', b'"extra": 1, "optional"'),
        payload(digest="nodigest"),
    ],
)
def test_malformed_payloads_are_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_signed_payload(body, SIMPLE_SIGNING_TYPE)


# -- registries.d -------------------------------------------------------------------------------------------


def test_registries_d_picks_the_most_specific_lookaside() -> None:
    merged = RegistriesD()
    sources: dict[str, str] = {}
    merged = merged.merged_with(
        parse_registries_d("default-docker:\n  lookaside: https://sigs.test/default\n", "a.yaml"),
        "a.yaml",
        sources,
    )
    merged = merged.merged_with(
        parse_registries_d(
            "docker:\n  reg.io/team:\n    lookaside: file:///sigs\n"
            "  reg.io:\n    use-sigstore-attachments: true\n",
            "b.yaml",
        ),
        "b.yaml",
        sources,
    )
    assert merged.lookaside_base(TAGGED) == "file:///sigs/team/app"
    assert merged.lookaside_base(parse("other.io/x:1")) == "https://sigs.test/default/x"
    assert merged.uses_sigstore_attachments(TAGGED)
    assert not merged.uses_sigstore_attachments(parse("other.io/x:1"))
    assert (
        signature_url("file:///sigs/team/app", DIGEST, 2)
        == f"file:///sigs/team/app@sha256={'ab' * 32}/signature-2"
    )
    with pytest.raises(InvalidArgument, match=r"defined both in a\.yaml and c\.yaml"):
        merged.merged_with(parse_registries_d("default-docker: {}\n", "c.yaml"), "c.yaml", sources)


def test_without_configuration_signatures_come_from_the_builtin_directory() -> None:
    assert RegistriesD().lookaside_base(TAGGED) == "file:///var/lib/containers/sigstore/team/app"


@pytest.mark.parametrize(
    "text",
    [
        "docker: [1]\n",
        "default-docker:\n  lookaside: ftp://x\n",
        "unknown: 1\n",
        "docker:\n  a: {bad: 1}\n",
        ": :",
    ],
)
def test_a_broken_registries_d_file_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"f\.yaml"):
        parse_registries_d(text, "f.yaml")
