"""The configuration keys of CDI, OCI hooks and the log size limit, and that the daemon's wiring uses them."""

from pathlib import Path

import pytest

from app.config import ConfigError, load


def test_defaults_are_cri_o_s(tmp_path: Path) -> None:
    runtime = load(tmp_path / "absent.toml").runtime
    assert runtime.hooks_dir == ["/usr/share/containers/oci/hooks.d"]
    assert runtime.cdi_spec_dirs == ["/etc/cdi", "/var/run/cdi"]
    assert runtime.log_size_max == -1


@pytest.mark.parametrize("value", [-1, -5, 8192, 10 * 1024 * 1024])
def test_log_size_max_may_be_negative_or_at_least_conmon_s_buffer(tmp_path: Path, value: int) -> None:
    loaded = load(tmp_path / "absent.toml", overrides=[f"runtime.log_size_max={value}"])
    assert loaded.runtime.log_size_max == value


@pytest.mark.parametrize("value", [0, 1, 8191, 2**63])
def test_a_log_size_max_conmon_cannot_keep_is_refused(tmp_path: Path, value: int) -> None:
    with pytest.raises(ConfigError, match=r"runtime\.log_size_max"):
        load(tmp_path / "absent.toml", overrides=[f"runtime.log_size_max={value}"])


def test_directories_are_lists_of_strings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"runtime\.hooks_dir"):
        load(tmp_path / "absent.toml", overrides=['runtime.hooks_dir="/one/dir"'])
    loaded = load(tmp_path / "absent.toml", overrides=['runtime.cdi_spec_dirs=["/a", "/b"]'])
    assert loaded.runtime.cdi_spec_dirs == ["/a", "/b"]
