"""Images shaped to exhaust the node, pulled by the real daemon from a real registry on 127.0.0.1.

Each is pushed as built (no image builder makes them): a manifest listing one layer 501 times, a 10 KiB
layer holding a 9 GiB sparse file, a layer with a 2 MiB PAX header, a layer nesting 2000 directories. The
first three are refused with a status naming the limit and leave nothing in the store; the deep one is
pulled, measured and removed whole.
"""

import io
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.fixtures.images import OCI_LAYER, Layer, directory, file, image_config, make_layer, push_image
from tests.fixtures.push import Pusher, sha256_digest
from tests.fixtures.registry import RunningRegistry, registries_settings
from tests.storage_fixtures import unmount_all_under

DEPTH = 2000


@pytest.fixture(scope="module")
def daemon(registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    workdir = tmp_path_factory.mktemp("hostile-pulls")
    settings = [*registries_settings(workdir, registry), f'network.cni_conf_dir="{workdir}"']
    running = Daemon(workdir / "pycrio", settings).start()
    try:
        yield running
    finally:
        running.stop()
        unmount_all_under(workdir)
        subprocess.run(["rm", "-rf", "--one-file-system", str(workdir)], check=False)


@pytest.fixture(scope="module")
def pusher(registry: RunningRegistry) -> Iterator[Pusher]:
    pushing = Pusher(registry)
    try:
        yield pushing
    finally:
        pushing.close()


def raw_layer(tar: bytes) -> Layer:
    return Layer(OCI_LAYER["none"], tar, sha256_digest(tar), sha256_digest(tar), "none", ())


def push(pusher: Pusher, name: str, layers: list[Layer]) -> str:
    push_image(pusher, f"pycrio/hostile-pull-{name}", "latest", layers, image_config(layers))
    return f"{pusher.host}/pycrio/hostile-pull-{name}:latest"


def pull(daemon: Daemon, reference: str) -> str:
    request = pb.PullImageRequest(image=pb.ImageSpec(image=reference))
    return str(daemon.client.image.PullImage(request, timeout=300).image_ref)


def left_in_store(daemon: Daemon) -> list[str]:
    """What is in the store's layer, link and temp dirs (none of them exists before the first unpack)."""
    storage = daemon.workdir / "root" / "storage"
    return [
        f"{sub}/{entry.name}"
        for sub in ("layers", "tmp", "l")
        if (storage / sub).is_dir()
        for entry in (storage / sub).iterdir()
    ]


def refused(daemon: Daemon, reference: str, code: grpc.StatusCode, match: str) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        pull(daemon, reference)
    assert failure.value.code() == code, failure.value.details()
    assert match in str(failure.value.details()), failure.value.details()
    assert left_in_store(daemon) == []


def test_a_manifest_of_more_layers_than_overlayfs_stacks_is_refused_before_any_download(
    daemon: Daemon, pusher: Pusher
) -> None:
    one = make_layer([file("f", "x")])
    reference = push(pusher, "many-layers", [one] * 501)
    refused(daemon, reference, grpc.StatusCode.INVALID_ARGUMENT, "501 layers, more than the 500")


def test_a_sparse_bomb_is_refused_before_it_is_written(
    daemon: Daemon, pusher: Pusher, tmp_path: Path
) -> None:
    scratch = tmp_path / "sparse"
    scratch.mkdir()
    with open(scratch / "big", "wb") as out:
        out.truncate(9 << 30)
    tar = subprocess.run(
        ["tar", "--sparse", "-H", "pax", "-cf", "-", "-C", str(scratch), "big"],
        check=True,
        capture_output=True,
    ).stdout
    shutil.rmtree(scratch)
    reference = push(pusher, "sparse-bomb", [raw_layer(tar)])
    refused(daemon, reference, grpc.StatusCode.RESOURCE_EXHAUSTED, "config key image.max_layer_bytes")


def test_a_huge_pax_header_is_refused(daemon: Daemon, pusher: Pusher) -> None:
    info = tarfile.TarInfo("f")
    info.pax_headers = {"comment": "x" * (2 << 20)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info)
    reference = push(pusher, "pax-header", [raw_layer(out.getvalue())])
    refused(daemon, reference, grpc.StatusCode.INVALID_ARGUMENT, "extended tar header")


def test_a_layer_nesting_deeper_than_python_recursion_is_pulled_and_removed(
    daemon: Daemon, pusher: Pusher
) -> None:
    entries = [directory("/".join(["a"] * depth)) for depth in range(1, DEPTH + 1)]
    deep = make_layer([*entries, file("/".join(["a"] * DEPTH) + "/f", "deep")])
    reference = push(pusher, "deep", [deep])
    pull(daemon, reference)
    usage = daemon.client.image.ImageFsInfo(pb.ImageFsInfoRequest()).image_filesystems[0]
    assert usage.inodes_used.value >= DEPTH
    daemon.client.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=reference)))
    assert left_in_store(daemon) == []
