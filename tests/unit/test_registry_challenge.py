"""WWW-Authenticate parsing."""

from adapters.registry.challenge import Challenge, parse_challenges


def test_bearer_challenge_with_quoted_parameters() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:a/b:pull",
            },
        )
    ]


def test_basic_challenge_and_case_insensitive_names() -> None:
    assert parse_challenges('BASIC Realm="pycrio"') == [Challenge("basic", {"realm": "pycrio"})]


def test_escapes_commas_inside_quotes_and_token_values() -> None:
    header = (
        r'Bearer realm="https://a.test/t?x=1,y=2", service=svc, scope="repository:a:pull,push", '
        r'error="say \"no\""'
    )
    (challenge,) = parse_challenges(header)
    assert challenge.realm == "https://a.test/t?x=1,y=2"
    assert challenge.service == "svc"
    assert challenge.scope == "repository:a:pull,push"
    assert challenge.params["error"] == 'say "no"'


def test_several_challenges_in_one_header() -> None:
    header = 'Basic realm="r1", Bearer realm="https://t.test/token",service="s"'
    assert [c.scheme for c in parse_challenges(header)] == ["basic", "bearer"]
    assert parse_challenges(header)[1].service == "s"


def test_garbage_yields_what_it_can() -> None:
    assert parse_challenges("") == []
    assert parse_challenges("   ,  ") == []
    assert parse_challenges("Negotiate abc==") == [Challenge("negotiate", {})]
    assert parse_challenges('Bearer realm="unterminated') == [Challenge("bearer", {"realm": "unterminated"})]
