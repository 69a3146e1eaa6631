"""registries.conf v2 semantics (prefix matching, rewriting, mirrors, blocked, drop-ins), after the man page
and containers/image's behaviour."""

from pathlib import Path

import pytest

from adapters.registry.conf_files import load_registries_conf
from domain.errors import InvalidArgument
from domain.image_reference import ImageReference
from domain.registries_conf import RegistriesConf, parse_registries_conf

EXAMPLE = """
unqualified-search-registries = ["example.com", "quay.io"]

[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"

[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true

[[registry]]
location = "registry.com"

[[registry.mirror]]
location = "mirror.registry.com"

[[registry]]
location = "blocked.io"
blocked = true

[[registry]]
prefix = "*.wild.io"
insecure = true
"""


def conf() -> RegistriesConf:
    return parse_registries_conf(EXAMPLE, "test.conf")


def sources(name: str) -> list[tuple[str, bool, bool]]:
    (candidate,) = conf().candidates(name)
    return [(str(s.reference), s.insecure, s.mirror) for s in candidate.sources]


def test_the_man_page_example_tries_mirrors_then_the_rewritten_location() -> None:
    assert sources("example.com/foo/image:latest") == [
        ("example-mirror-0.local/mirror-for-foo/image:latest", False, True),
        ("example-mirror-1.local/mirrors/foo/image:latest", True, True),
        ("internal-registry-for-example.com/bar/image:latest", False, False),
    ]


def test_mirrors_belong_to_their_table_only() -> None:
    assert sources("registry.com/image:1") == [
        ("mirror.registry.com/image:1", False, True),
        ("registry.com/image:1", False, False),
    ]


def test_prefix_must_end_at_a_boundary() -> None:
    assert conf().find("example.com/foobar/x") is None
    table = conf().find("example.com/foo@sha256:" + "0" * 64)
    assert table is not None and table.prefix == "example.com/foo"
    assert sources("docker.io/library/busybox") == [("docker.io/library/busybox:latest", False, False)]


def test_wildcard_prefix_keeps_the_name_and_applies_settings() -> None:
    assert sources("a.b.wild.io/x:1") == [("a.b.wild.io/x:1", True, False)]
    assert conf().find("wild.io/x") is None


def test_blocked_registry_has_no_sources() -> None:
    (candidate,) = conf().candidates("blocked.io/app")
    assert candidate.blocked and candidate.sources == ()


def test_short_names_expand_over_search_registries_in_order() -> None:
    assert [str(c.reference) for c in conf().candidates("app:2")] == ["example.com/app:2", "quay.io/app:2"]
    assert [str(c.reference) for c in RegistriesConf().candidates("app")] == ["docker.io/library/app:latest"]


def test_digest_only_mirrors() -> None:
    text = """
[[registry]]
location = "origin.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.io"
[[registry]]
location = "other.io"
[[registry.mirror]]
location = "tags.io"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "digests.io"
pull-from-mirror = "digest-only"
"""
    parsed = parse_registries_conf(text, "t")
    digest = "sha256:" + "a" * 64

    def hosts(name: str) -> list[str]:
        return [s.reference.registry for s in parsed.candidates(name)[0].sources]

    assert hosts("origin.io/a:1") == ["origin.io"]
    assert hosts(f"origin.io/a@{digest}") == ["m.io", "origin.io"]
    assert hosts("other.io/a:1") == ["tags.io", "other.io"]
    assert hosts(f"other.io/a@{digest}") == ["digests.io", "other.io"]


def test_docker_io_rewrites_need_the_library_namespace() -> None:
    text = '[[registry]]\nprefix = "docker.io/library"\nlocation = "127.0.0.1:5000/hub"\ninsecure = true\n'
    (candidate,) = parse_registries_conf(text, "t").candidates("busybox")
    assert candidate.reference == ImageReference("docker.io", "library/busybox", "latest")
    assert [str(s.reference) for s in candidate.sources] == ["127.0.0.1:5000/hub/busybox:latest"]


def test_v1_format_converts() -> None:
    text = """
[registries.search]
registries = ["a.io"]
[registries.insecure]
registries = ["b.io"]
[registries.block]
registries = ["c.io"]
"""
    parsed = parse_registries_conf(text, "v1.conf")
    assert parsed.unqualified_search_registries == ("a.io",)
    assert parsed.candidates("c.io/x")[0].blocked
    assert parsed.candidates("b.io/x")[0].sources[0].insecure


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("unqualified-search-registries = ['https://a.io']", "URI schemes"),
        ("unqualified-search-registries = ['a.io/ns']", "unqualified-search-registries entry"),
        ("[[registry]]\ninsecure = true", "both location and prefix are unset"),
        ("[[registry]]\nprefix = 'a.io/x'", "location is unset"),
        ("[[registry]]\nprefix = '*.a.io/x'", "wildcarded prefix"),
        ("[[registry]]\nlocation = 'a.io'\n[[registry.mirror]]\ninsecure = true", "mirror location is unset"),
        ("[[registry]]\nlocation = 'a.io'\nblocked = 'yes'", "blocked"),
        ("[[registry]]\nlocation = 'a.io'\nlocaton = 'typo'", "unknown keys locaton"),
        (
            "[[registry]]\nlocation = 'a.io'\n"
            "[[registry]]\nprefix = 'a.io/x'\nlocation = 'a.io'\ninsecure = true",
            "conflicting 'insecure'",
        ),
        (
            "[[registry]]\nlocation = 'a.io'\n[[registry.mirror]]\nlocation = 'm.io'\npull-from-mirror = 'x'",
            "pull-from-mirror",
        ),
        ("[registries.search]\nregistries = ['a.io']\n[[registry]]\nlocation = 'b.io'", "mixing"),
        ("not toml [", "test.conf"),
    ],
)
def test_invalid_configurations_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_registries_conf(text, "test.conf")
    assert fragment in str(err.value)
    assert "test.conf" in str(err.value)


def test_drop_ins_override_search_and_replace_tables_by_prefix(tmp_path: Path) -> None:
    main = tmp_path / "registries.conf"
    main.write_text(
        'unqualified-search-registries = ["a.io"]\n[[registry]]\nlocation = "x.io"\ninsecure = true\n'
        '[[registry]]\nlocation = "y.io"\n'
    )
    drop_ins = tmp_path / "registries.conf.d"
    drop_ins.mkdir()
    (drop_ins / "10-a.conf").write_text('[[registry]]\nlocation = "x.io"\nblocked = true\n')
    (drop_ins / "20-b.conf").write_text('unqualified-search-registries = ["b.io", "c.io"]\n')
    (drop_ins / "30-c.conf.disabled").write_text("broken [")
    (drop_ins / "sub.conf").mkdir()
    merged = load_registries_conf(main, drop_ins)
    assert merged.unqualified_search_registries == ("b.io", "c.io")
    assert merged.candidates("x.io/app")[0].blocked
    assert not merged.candidates("x.io/app")[0].sources
    assert merged.find("y.io/app") is not None


def test_v1_drop_ins_are_refused(tmp_path: Path) -> None:
    drop_ins = tmp_path / "d"
    drop_ins.mkdir()
    (drop_ins / "a.conf").write_text("[registries.search]\nregistries = ['a.io']\n")
    with pytest.raises(InvalidArgument, match="v2 format"):
        load_registries_conf(tmp_path / "absent.conf", drop_ins)


def test_absent_files_mean_defaults(tmp_path: Path) -> None:
    assert load_registries_conf(tmp_path / "none.conf", tmp_path / "none.d") == RegistriesConf()


def test_the_fixture_helper_writes_a_valid_conf() -> None:
    from tests.fixtures.registry import RunningRegistry, registries_conf_text

    running = [
        RunningRegistry("plain", "127.0.0.1:5001", "http", "c1"),
        RunningRegistry("tls", "127.0.0.1:5002", "https", "c2"),
    ]
    parsed = parse_registries_conf(registries_conf_text(*running), "fixture")
    assert parsed.unqualified_search_registries == ("127.0.0.1:5001", "127.0.0.1:5002")
    assert all(parsed.candidates(f"{r.host}/x")[0].sources[0].insecure for r in running)


def test_aliases_decide_short_names_alone(tmp_path: Path) -> None:
    main = tmp_path / "registries.conf"
    main.write_text(
        'unqualified-search-registries = ["quay.io"]\nshort-name-mode = "enforcing"\n'
        '[aliases]\n"busybox" = "docker.io/busybox"\n"team/app" = "127.0.0.1:5000/team/app"\n'
        '"gone" = "a.io/gone"\n'
    )
    drop_ins = tmp_path / "d"
    drop_ins.mkdir()
    (drop_ins / "a.conf").write_text('[aliases]\n"gone" = ""\n')
    merged = load_registries_conf(main, drop_ins)
    digest = "sha256:" + "e" * 64
    assert [str(c.reference) for c in merged.candidates("busybox:1")] == ["docker.io/library/busybox:1"]
    assert [str(c.reference) for c in merged.candidates(f"team/app@{digest}")] == [
        f"127.0.0.1:5000/team/app@{digest}"
    ]
    assert [str(c.reference) for c in merged.candidates("gone")] == ["quay.io/gone:latest"]
    assert [str(c.reference) for c in merged.candidates("other")] == ["quay.io/other:latest"]


@pytest.mark.parametrize(
    ("aliases", "fragment"),
    [
        ('"quay.io/x" = "quay.io/x"', "invalid short name"),
        ('"x:1" = "quay.io/x"', "invalid short name"),
        ('"x" = "x"', "must contain registry"),
        ('"x" = "quay.io/x:1"', "must contain registry"),
        ('"X" = "quay.io/x"', "lowercase"),
    ],
)
def test_invalid_aliases(aliases: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        parse_registries_conf(f"[aliases]\n{aliases}\n", "t")


def test_invalid_short_name_mode() -> None:
    with pytest.raises(InvalidArgument, match="short-name mode"):
        parse_registries_conf('short-name-mode = "prompt"\n', "t")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("", ["a.io/team/app:1", "b.io/team/app:1"]),
        ('short-name-mode = "permissive"\n', ["a.io/team/app:1", "b.io/team/app:1"]),
        ('short-name-mode = "disabled"\n', ["a.io/team/app:1", "b.io/team/app:1"]),
        ('short-name-mode = "enforcing"\n', None),
    ],
)
def test_short_name_modes_with_several_search_registries(mode: str, expected: list[str] | None) -> None:
    conf = parse_registries_conf(f'unqualified-search-registries = ["a.io", "b.io"]\n{mode}', "t")
    if expected is None:
        with pytest.raises(
            InvalidArgument,
            match="short name mode is enforcing, but image name team/app:1 returns ambiguous list",
        ):
            conf.candidates("team/app:1")
        # Qualified names and aliases are never ambiguous.
        assert [str(c.reference) for c in conf.candidates("a.io/team/app:1")] == ["a.io/team/app:1"]
        return
    assert [str(c.reference) for c in conf.candidates("team/app:1")] == expected


def test_enforcing_accepts_one_search_registry_and_aliases_and_drop_ins_set_the_mode(tmp_path: Path) -> None:
    main = tmp_path / "registries.conf"
    main.write_text('unqualified-search-registries = ["a.io", "b.io"]\n[aliases]\n"app" = "b.io/team/app"\n')
    drop_ins = tmp_path / "d"
    drop_ins.mkdir()
    (drop_ins / "10-mode.conf").write_text('short-name-mode = "enforcing"\n')
    merged = load_registries_conf(main, drop_ins)
    assert merged.short_name_mode == "enforcing"
    assert [str(c.reference) for c in merged.candidates("app:2")] == ["b.io/team/app:2"]
    with pytest.raises(InvalidArgument, match="ambiguous"):
        merged.candidates("other")
    single = parse_registries_conf(
        'unqualified-search-registries = ["a.io"]\nshort-name-mode = "enforcing"\n', "t"
    )
    assert [str(c.reference) for c in single.candidates("other")] == ["a.io/other:latest"]
