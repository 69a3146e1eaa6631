"""The CredentialStore contract, run against the in-memory fake and containers-auth.json(5) files."""

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.registry.auth_files import AuthFileCredentials
from domain.errors import FailedPrecondition, InvalidArgument
from ports.credentials import CredentialStore
from ports.registry import RegistryAuth
from tests.fakes.credentials import InMemoryCredentials

# key, user, namespace ("" = global)
Entries = list[tuple[str, str, str]]
Build = Callable[[Entries], CredentialStore]


def _encoded(user: str) -> str:
    return base64.b64encode(f"{user}:secret-{user}".encode()).decode()


@pytest.fixture(params=["fake", "auth-files"])
def build(request: pytest.FixtureRequest, tmp_path: Path) -> Build:
    def fake(entries: Entries) -> CredentialStore:
        store = InMemoryCredentials()
        for key, user, namespace in entries:
            store.add(key, RegistryAuth(auth=_encoded(user), server_address=key.split("/")[0]), namespace)
        return store

    def files(entries: Entries) -> CredentialStore:
        documents: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
        for key, user, namespace in entries:
            documents.setdefault(namespace, {"auths": {}})["auths"][key] = {"auth": _encoded(user)}
        (tmp_path / "auth").mkdir(exist_ok=True)
        for namespace, document in documents.items():
            path = tmp_path / "auth" / f"{namespace}.json" if namespace else tmp_path / "auth.json"
            path.write_text(json.dumps(document))
        return AuthFileCredentials(str(tmp_path / "auth.json"), str(tmp_path / "auth"))

    return fake if request.param == "fake" else files


def _user(found: RegistryAuth | None) -> str:
    assert found is not None
    return base64.b64decode(found.auth).decode().split(":")[0]


def test_no_entry_no_credentials(build: Build) -> None:
    store = build([("other.test", "x", "")])
    assert store.lookup("r.test/a/b:1") is None
    assert store.lookup("r.test/a/b:1", "team") is None


def test_a_host_entry_covers_every_repository(build: Build) -> None:
    store = build([("r.test:5000", "host", "")])
    assert _user(store.lookup("r.test:5000/a/b:1")) == "host"
    assert _user(store.lookup("r.test:5000/c@sha256:" + "0" * 64)) == "host"
    found = store.lookup("r.test:5000/c")
    assert found is not None and found.server_address == "r.test:5000"


def test_the_most_specific_repository_entry_wins(build: Build) -> None:
    store = build([("r.test", "host", ""), ("r.test/team", "team", ""), ("r.test/team/app", "app", "")])
    assert _user(store.lookup("r.test/team/app:1")) == "app"
    assert _user(store.lookup("r.test/team/other:1")) == "team"
    assert _user(store.lookup("r.test/solo:1")) == "host"
    assert _user(store.lookup("r.test/team/application:1")) == "team"


def test_the_namespace_comes_before_the_global_entries(build: Build) -> None:
    store = build([("r.test", "global", ""), ("r.test", "ns", "team-a")])
    assert _user(store.lookup("r.test/app:1", "team-a")) == "ns"
    assert _user(store.lookup("r.test/app:1", "team-b")) == "global"
    assert _user(store.lookup("r.test/app:1")) == "global"


def test_docker_legacy_keys_name_docker_io(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": _encoded("hub")}}}))
    assert _user(AuthFileCredentials(str(path)).lookup("docker.io/library/busybox:latest")) == "hub"


def test_a_namespace_that_is_not_a_name_is_refused_not_read(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text(json.dumps({"auths": {"r.test": {"auth": _encoded("x")}}}))
    store = AuthFileCredentials("", str(tmp_path / "auth"))
    with pytest.raises(InvalidArgument, match="namespace"):
        store.lookup("r.test/a:1", "../secret")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"auths": []}',
        '{"auths": {"r.test": {"auth": "%%%"}}}',
        '{"auths": {"r.test": {"auth": 1}}}',
    ],
)
def test_a_broken_auth_file_fails_the_pull_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "auth.json"
    path.write_text(content)
    with pytest.raises(FailedPrecondition, match="auth file"):
        AuthFileCredentials(str(path)).lookup("r.test/a:1")
