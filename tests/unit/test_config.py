"""Config layering and validation."""

from pathlib import Path

import pytest

from app.config import ConfigError, load


def test_defaults_work_without_any_file(tmp_path: Path) -> None:
    config = load(tmp_path / "absent.toml")
    assert config.grpc.listen == "unix:///run/pycrio/pycrio.sock"
    assert config.runtime.root == "/var/lib/pycrio"
    assert config.runtime.run_dir == "/run/pycrio"
    assert config.runtime.default_runtime == "runc"
    assert config.socket_path == Path("/run/pycrio/pycrio.sock")


def test_file_then_drop_ins_in_lexical_order_then_overrides(tmp_path: Path) -> None:
    main = tmp_path / "pycrio.toml"
    main.write_text('[log]\nlevel = "debug"\n[runtime]\ncgroup_driver = "systemd"\n')
    drop_ins = tmp_path / "pycrio.toml.d"
    drop_ins.mkdir()
    (drop_ins / "20-late.toml").write_text('[log]\nformat = "json"\nlevel = "error"\n')
    (drop_ins / "10-early.toml").write_text('[log]\nlevel = "warning"\n')
    (drop_ins / "ignored.txt").write_text("not toml at all [")
    config = load(main, overrides=["runtime.cgroup_driver=cgroupfs"])
    assert config.log.level == "error"
    assert config.log.format == "json"
    assert config.runtime.cgroup_driver == "cgroupfs"


def test_runtime_handlers_merge_with_the_defaults(tmp_path: Path) -> None:
    main = tmp_path / "pycrio.toml"
    main.write_text(
        '[runtime.runtimes.kata]\npath = "/usr/bin/kata-runtime"\n[runtime.runtimes.runc]\nroot = "/x"\n'
    )
    config = load(main)
    assert set(config.runtime.runtimes) == {"runc", "crun", "kata"}
    assert config.runtime.runtimes["runc"].root == "/x"
    assert config.runtime.runtimes["runc"].path == "/usr/sbin/runc"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[log]\nlevle = 'debug'\n", "log.levle"),
        ("[nope]\nx = 1\n", "nope"),
        ("[log]\nlevel = 'loud'\n", "log.level"),
        ("[grpc]\nmax_workers = 'many'\n", "grpc.max_workers"),
        ("[grpc]\nmax_workers = 0\n", "grpc.max_workers"),
        ("[grpc]\nlisten = 'tcp://0.0.0.0:1'\n", "grpc.listen"),
        ("[grpc]\nsocket_mode = '999'\n", "grpc.socket_mode"),
        ("[runtime]\ndefault_runtime = 'kata'\n", "runtime.default_runtime"),
        ("[runtime.runtimes.kata]\npaht = '/x'\n", "runtime.runtimes.kata.paht"),
        ("[network]\ncni_plugin_dirs = '/usr/lib/cni'\n", "network.cni_plugin_dirs"),
        ("[image]\npinned_images = [1]\n", "image.pinned_images[0]"),
        ("[streaming]\ntls_cert = '/c.pem'\n", "streaming.tls_cert"),
        ("[pods]\nshm_size = -5\n", "pods.shm_size"),
        ("[streaming]\nport = 70000\n", "streaming.port"),
        ("[metrics]\nport = 0\n", "metrics.port"),
        ("[stats]\nperiod = -1\n", "stats.period"),
        ("[runtime]\nsubprocess_timeout = 0\n", "runtime.subprocess_timeout"),
        ("[runtime]\nroot = 'relative/dir'\n", "runtime.root"),
        ("[image]\npull_progress_timeout = 1e9\n", "image.pull_progress_timeout"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    main = tmp_path / "pycrio.toml"
    main.write_text(toml)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load(main)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    main = tmp_path / "pycrio.toml"
    main.write_text("[log\n")
    with pytest.raises(ConfigError, match=r"pycrio\.toml"):
        load(main)


def test_override_needs_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        load(tmp_path / "absent.toml", overrides=["log.level"])


def test_override_bare_words_are_strings_and_toml_values_are_typed(tmp_path: Path) -> None:
    config = load(tmp_path / "absent.toml", overrides=["log.level=debug", "streaming.port=10010"])
    assert config.log.level == "debug"
    assert config.streaming.port == 10010


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("pods.shm_size=-5", "pods.shm_size: -5 is not allowed; allowed: 4096 to 1099511627776 bytes"),
        ("grpc.socket_mode=999", "grpc.socket_mode: 999 is not allowed; allowed: a string, not an integer"),
        ("grpc.socket_mode=0999", "grpc.socket_mode: '0999' is not allowed; allowed: octal bits like 0660"),
        ("streaming.port=70000", "streaming.port: 70000 is not allowed; allowed: 0 to 65535"),
        ("log.level=loud", "log.level: 'loud' is not allowed; allowed: one of debug, info, warning, error"),
    ],
)
def test_a_value_out_of_range_names_key_value_and_what_is_allowed(
    tmp_path: Path, override: str, line: str
) -> None:
    with pytest.raises(ConfigError) as failure:
        load(tmp_path / "absent.toml", overrides=[override])
    assert str(failure.value) == line


def test_an_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--config: '.*typo\.toml' does not exist"):
        load(tmp_path / "typo.toml", explicit=True)
    (tmp_path / "typo.toml").write_text("")
    assert load(tmp_path / "typo.toml", explicit=True).log.level == "info"


def test_a_named_drop_in_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--config-dir: '.*conf\.d' does not exist"):
        load(tmp_path / "absent.toml", tmp_path / "conf.d")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10.toml").write_text("[log]\nlevel = 'debug'\n")
    assert load(tmp_path / "absent.toml", tmp_path / "conf.d").log.level == "debug"
