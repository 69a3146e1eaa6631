"""Reading registries.conf and its drop-in directory from disk (as containers/image does).

The main file may be absent (then nothing is configured); drop-ins are `*.conf` files in the directory,
applied in lexical order, and must use the version 2 format. Read on every pull, so edits take effect
without a restart; both are tiny.
"""

from pathlib import Path

from adapters.host.os_errors import is_node_fault
from domain.errors import InvalidArgument
from domain.registries_conf import RegistriesConf, parse_registries_conf


def load_registries_conf(main_file: Path, drop_in_dir: Path | None) -> RegistriesConf:
    """The merged configuration; InvalidArgument names the file at fault."""
    conf = RegistriesConf()
    if main_file.is_file():
        conf = _read(main_file, drop_in=False)
    if drop_in_dir is not None and drop_in_dir.is_dir():
        for path in sorted(drop_in_dir.glob("*.conf")):
            if path.is_file():
                conf = conf.merged_with(_read(path, drop_in=True))
    return conf


def _read(path: Path, drop_in: bool) -> RegistriesConf:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        if is_node_fault(err):  # the node's trouble (no file descriptors left ...), not the file's
            raise
        raise InvalidArgument(f"{path}: {err}") from None
    return parse_registries_conf(text, str(path), drop_in=drop_in)
