"""Where OCI hook definitions come from (cri-o's `hooks_dir` directories of `*.json` hook files)."""

from typing import Protocol

from domain.oci_hooks import HookSet


class OciHooks(Protocol):
    def load(self) -> HookSet:
        """Every hook file of the directories as it is now. A file in a later directory replaces the file of
        the same name in an earlier one; files that are not valid hooks, or whose program does not exist,
        are reported with why instead. Only `*.json` files count; a missing directory holds nothing."""
        ...
