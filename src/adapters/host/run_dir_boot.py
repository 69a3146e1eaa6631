"""The run dir holds what one boot of the node made, and nothing of an earlier one.

On a node `runtime.run_dir` is a tmpfs (/run) that a reboot empties. Where it is on disk instead, an earlier
boot's leftovers would mislead the daemon: namespace pins that are empty files now (the bridge plugin fails
CNI DEL on them), pid files and conmon's pid naming processes of that boot (a pid may name an unrelated
process now), the OCI runtime's state and exit files. The kernel's boot id is kept in the run dir, and a
daemon that finds another one there first empties the dir, as a reboot would have. A run dir without the
file (a tmpfs after a reboot, or one a daemon without this record filled in this boot) is left as it is.
"""

import contextlib
import os
import shutil
from pathlib import Path

import structlog

from adapters.namespaces import linux
from domain.boots import from_earlier_boot

BOOT_FILE = "boot_id"
_log = structlog.get_logger("pycrio.run_dir")


def claim_run_dir(run_dir: Path, boot_id: str, keep: tuple[str, ...] = ()) -> bool:
    """Record `boot_id` as the run dir's boot, emptying the dir first (all but `keep`: the lock file held
    now) when an earlier boot filled it. Returns whether it was emptied."""
    record = run_dir / BOOT_FILE
    try:
        recorded = record.read_text().strip()
    except FileNotFoundError:
        recorded = ""
    earlier = from_earlier_boot(recorded, boot_id)
    if earlier:
        _log.warning(
            "the run dir outlived a reboot (it is no tmpfs): emptying it",
            run_dir=str(run_dir),
            recorded_boot=recorded,
            boot=boot_id,
        )
        _detach_mounts_below(run_dir)
        for entry in run_dir.iterdir():
            if entry.name in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
    if boot_id and recorded != boot_id:
        temporary = run_dir / f".{BOOT_FILE}.tmp"
        temporary.write_text(boot_id + "\n")
        os.replace(temporary, record)
    return earlier


def _detach_mounts_below(run_dir: Path) -> None:
    """Mounts strictly below the run dir, deepest first, so that removing the old files never reaches into
    a mounted file system (a reboot dropped the old boot's mounts; the run dir itself may be one and
    stays)."""
    prefix = str(run_dir.resolve()) + "/"
    targets = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].replace("\\040", " ")
        if target.startswith(prefix):
            targets.append(target)
    for target in sorted(targets, key=len, reverse=True):
        try:
            linux.umount2(target, linux.MNT_DETACH)
        except OSError as err:
            _log.warning("could not detach a mount in the run dir", mount=target, error=str(err))
