"""OciHooks over hook directories (cri-o's `hooks_dir`): `*.json` files; a later directory's file replaces
the earlier file of the same name. A broken file, or a hook whose program does not exist, is reported and
not used (an earlier directory's file of that name then stays, as in containers/common)."""

import os
from collections.abc import Sequence

from adapters.extensions.directory_files import ParsedDirectories
from domain.errors import InvalidArgument
from domain.oci_hooks import HookSet, OciHook, parse_hook


def _parse(path: str, data: bytes, index: int) -> OciHook:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InvalidArgument("not UTF-8 text") from None
    return parse_hook(text, os.path.basename(path))


class DirectoryOciHooks:
    def __init__(self, directories: Sequence[str]) -> None:
        self._files = ParsedDirectories(directories, (".json",), _parse)

    def load(self) -> HookSet:
        by_name: dict[str, OciHook] = {}
        errors: list[tuple[str, str]] = []
        for entry in self._files.read():
            if entry.parsed is None:
                errors.append((entry.path, entry.error))
            elif not os.path.exists(entry.parsed.path):
                errors.append((entry.path, f"hook program {entry.parsed.path} does not exist"))
            else:
                by_name[entry.name] = entry.parsed
        return HookSet(tuple(by_name.values()), tuple(errors))
