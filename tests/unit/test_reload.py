"""SIGHUP's reload: live keys applied in place, file changes noticed, other keys named for a restart."""

import logging
from pathlib import Path

import pytest

from app.config import Config, ConfigError, load
from app.config_docs import all_keys
from app.reload import Reloader
from domain.images import ImageService
from ports.image_store import ImageConfig, ImageRecord
from tests.fakes.image_store import InMemoryImageStore
from tests.fakes.image_users import FakeImageUsers
from tests.fakes.layer_store import InMemoryLayerStore
from tests.fakes.registry import InMemoryRegistry
from tests.fakes.signatures import trust_with


def _images() -> ImageService:
    return ImageService(
        InMemoryRegistry(),
        InMemoryLayerStore(),
        InMemoryImageStore(),
        FakeImageUsers(),
        trust_with(InMemoryRegistry()),
    )


def _config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pycrio.toml"
    path.write_text(
        f'[image]\nregistries_conf = "{tmp_path}/registries.conf"\nregistries_conf_dir = "{tmp_path}/r.d"\n'
        f'signature_policy = "{tmp_path}/policy.json"\n[network]\ncni_conf_dir = "{tmp_path}/net.d"\n' + text
    )
    return path


def test_every_live_key_has_an_applier() -> None:
    reloader = Reloader(Config(), Config, _images())
    assert {key.name for key in all_keys(Config()) if key.live} == set(reloader.appliers)


def test_live_keys_apply_and_others_are_named_for_a_restart(tmp_path: Path) -> None:
    path = _config_file(tmp_path, '[log]\nlevel = "info"\n')
    config = load(path, explicit=True)
    images = _images()
    record = ImageRecord(
        id="a" * 64,
        repo_tags=("docker.io/library/busybox:latest",),
        repo_digests=(),
        layers=(),
        size=1,
        config=ImageConfig(),
    )
    reloader = Reloader(config, lambda: load(path, explicit=True), images)
    root_level = logging.getLogger().level
    try:
        path.write_text(
            path.read_text().replace('level = "info"', 'level = "debug"') + "[grpc]\nmax_workers = 8\n"
        )
        path.write_text(path.read_text().replace("[image]\n", '[image]\npinned_images = ["busybox"]\n', 1))
        result = reloader.reload()
        assert result is not None
        assert result.applied == ["log.level='debug'", "image.pinned_images=['busybox']"]
        assert result.needs_restart == ["grpc.max_workers"]
        assert logging.getLogger().level == logging.DEBUG
        assert images.is_pinned(record)
        assert config.log.level == "debug" and config.grpc.max_workers == 64
    finally:
        logging.getLogger().setLevel(root_level)


def test_changed_registries_conf_policy_and_cni_files_are_reported(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "")
    (tmp_path / "net.d").mkdir()
    (tmp_path / "registries.conf").write_text("unqualified-search-registries = []\n")
    config = load(path, explicit=True)
    reloader = Reloader(config, lambda: load(path, explicit=True), _images())
    (tmp_path / "registries.conf").write_text('unqualified-search-registries = ["127.0.0.1:5000"]\n')
    (tmp_path / "policy.json").write_text('{"default": [{"type": "reject"}]}')
    (tmp_path / "net.d" / "10-x.conflist").write_text("{}")
    result = reloader.reload()
    assert result is not None
    assert result.files_changed == sorted(
        [f"{tmp_path}/registries.conf", f"{tmp_path}/policy.json", f"{tmp_path}/net.d/10-x.conflist"]
    )
    assert result.applied == [] and result.needs_restart == []
    again = reloader.reload()
    assert again is not None and again.files_changed == []


def test_a_config_that_no_longer_loads_keeps_the_running_one(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "")
    config = load(path, explicit=True)
    path.write_text("[log]\nlevel = 'loud'\n")
    assert Reloader(config, lambda: load(path, explicit=True), _images()).reload() is None
    assert config.log.level == "info"
    with pytest.raises(ConfigError):
        load(path, explicit=True)
