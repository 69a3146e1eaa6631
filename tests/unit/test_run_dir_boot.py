"""The run dir belongs to one boot: one on disk that an earlier boot filled is emptied at start-up."""

import subprocess
from pathlib import Path

import pytest

from adapters.host.run_dir_boot import BOOT_FILE, claim_run_dir
from tests.pod_host import netns_mounts


def _fill(run_dir: Path) -> None:
    (run_dir / "pods" / "abc" / "infra").mkdir(parents=True)
    (run_dir / "pods" / "abc" / "infra" / "pid").write_text("1234 5678")
    (run_dir / "pods" / "abc" / "ns").mkdir()
    (run_dir / "pods" / "abc" / "ns" / "net").write_text("")  # a pin whose mount the reboot took
    (run_dir / "conmon" / "def").mkdir(parents=True)
    (run_dir / "conmon" / "def" / "conmon.pid").write_text("4321")
    (run_dir / "pycrio.lock").write_text("99\n")
    (run_dir / "attach").mkdir()
    (run_dir / "attach" / "def").symlink_to(run_dir / "conmon")


def _files(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*")}


def test_a_run_dir_without_a_boot_file_is_kept_and_claimed(tmp_path: Path) -> None:
    _fill(tmp_path)
    before = _files(tmp_path)
    assert claim_run_dir(tmp_path, "boot-1", keep=("pycrio.lock",)) is False
    assert _files(tmp_path) == before | {BOOT_FILE}
    assert (tmp_path / BOOT_FILE).read_text() == "boot-1\n"


@pytest.mark.parametrize("boot_id", ["boot-1", ""], ids=["this boot", "a boot id the kernel has not"])
def test_a_run_dir_of_this_boot_or_of_an_unknown_one_is_kept(tmp_path: Path, boot_id: str) -> None:
    (tmp_path / BOOT_FILE).write_text("boot-1\n")
    _fill(tmp_path)
    before = _files(tmp_path)
    assert claim_run_dir(tmp_path, boot_id, keep=("pycrio.lock",)) is False
    assert _files(tmp_path) == before


@pytest.mark.root
def test_a_run_dir_an_earlier_boot_filled_is_emptied_but_for_what_is_kept(tmp_path: Path) -> None:
    (tmp_path / BOOT_FILE).write_text("boot-1\n")
    _fill(tmp_path)
    (tmp_path / "mounted").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(tmp_path / "mounted")], check=True)
    (tmp_path / "mounted" / "inside").write_text("of this boot")
    try:
        assert claim_run_dir(tmp_path, "boot-2", keep=("pycrio.lock",)) is True
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "mounted")], check=False)
    assert _files(tmp_path) == {"pycrio.lock", BOOT_FILE}
    assert (tmp_path / BOOT_FILE).read_text() == "boot-2\n"
    assert (tmp_path / "pycrio.lock").read_text() == "99\n"
    assert netns_mounts(tmp_path) == []
