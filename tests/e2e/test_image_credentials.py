"""Credentials from containers-auth.json(5) files, against the htpasswd and token registries of the suite:
the global file, the pod namespace's file, `host/repo` entries over `host` entries, and the request's own
credentials over both."""

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.e2e.test_images import push_small, remove
from tests.fixtures.registry import RunningRegistry, registries_settings


@pytest.fixture(scope="module")
def auth_daemon(
    basic_auth_registry: RunningRegistry,
    token_auth_registry: RunningRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Daemon]:
    workdir = tmp_path_factory.mktemp("credentials-e2e")
    (workdir / "auth").mkdir()
    running = Daemon(
        workdir / "pycrio",
        [
            *registries_settings(workdir, basic_auth_registry, token_auth_registry),
            f'image.global_auth_file="{workdir / "auth.json"}"',
            f'image.namespaced_auth_dir="{workdir / "auth"}"',
            f'network.cni_conf_dir="{workdir}"',
        ],
    ).start()
    try:
        yield running
    finally:
        running.stop()


def _write(path: Path, entries: dict[str, tuple[str, str]]) -> None:
    auths = {key: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for key, (u, p) in entries.items()}
    path.write_text(json.dumps({"auths": auths}))


def _pull(daemon: Daemon, image: str, namespace: str = "", auth: pb.AuthConfig | None = None) -> str:
    request = pb.PullImageRequest(image=pb.ImageSpec(image=image), auth=auth)
    if namespace:
        request.sandbox_config.metadata.CopyFrom(
            pb.PodSandboxMetadata(name="p", uid="u", namespace=namespace)
        )
    return str(daemon.client.image.PullImage(request, timeout=120).image_ref)


def _refused(daemon: Daemon, image: str, namespace: str = "") -> str:
    with pytest.raises(grpc.RpcError) as failure:
        _pull(daemon, image, namespace)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.value.details()
    return str(failure.value.details())


def test_the_global_auth_file_serves_pulls_without_credentials(
    auth_daemon: Daemon, basic_auth_registry: RunningRegistry, token_auth_registry: RunningRegistry
) -> None:
    global_file = auth_daemon.workdir.parent / "auth.json"
    basic = push_small(basic_auth_registry, "creds/global")
    token = push_small(token_auth_registry, "creds/global")
    global_file.unlink(missing_ok=True)
    assert "refused" in _refused(auth_daemon, basic.reference)
    for registry in (basic_auth_registry, token_auth_registry):
        _write(global_file, {registry.host: (registry.username, registry.password)})
        image = basic if registry is basic_auth_registry else token
        assert "sha256:" + _pull(auth_daemon, image.reference) == image.config_digest
        remove(auth_daemon, image.reference)
    global_file.unlink()


def test_a_repository_entry_wins_over_its_host_entry(
    auth_daemon: Daemon, basic_auth_registry: RunningRegistry
) -> None:
    global_file = auth_daemon.workdir.parent / "auth.json"
    image = push_small(basic_auth_registry, "creds/scoped")
    right = (basic_auth_registry.username, basic_auth_registry.password)
    host = basic_auth_registry.host
    _write(global_file, {host: ("reguser", "wrong"), f"{host}/creds/scoped": right})
    assert "sha256:" + _pull(auth_daemon, image.reference) == image.config_digest
    remove(auth_daemon, image.reference)
    _write(global_file, {host: right, f"{host}/creds/scoped": ("reguser", "wrong")})
    assert "refused" in _refused(auth_daemon, image.reference)
    global_file.unlink()


def test_the_pods_namespace_file_comes_first_and_request_credentials_win(
    auth_daemon: Daemon, basic_auth_registry: RunningRegistry
) -> None:
    image = push_small(basic_auth_registry, "creds/namespaced")
    host = basic_auth_registry.host
    right = (basic_auth_registry.username, basic_auth_registry.password)
    namespaced = auth_daemon.workdir.parent / "auth" / "team-a.json"
    _write(namespaced, {host: right})
    try:
        assert "sha256:" + _pull(auth_daemon, image.reference, "team-a") == image.config_digest
        remove(auth_daemon, image.reference)
        assert "refused" in _refused(auth_daemon, image.reference, "team-b")
        assert "refused" in _refused(auth_daemon, image.reference)
        wrong = pb.AuthConfig(username="reguser", password="wrong")
        with pytest.raises(grpc.RpcError):
            _pull(auth_daemon, image.reference, "team-a", auth=wrong)
    finally:
        namespaced.unlink()
