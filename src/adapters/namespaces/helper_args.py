"""The command lines of the namespace helpers, parsed without argparse.

The helpers run on every RunPodSandbox, and their run time is mostly interpreter start-up and imports:
argparse (with re, gettext and shutil) was about a third of it. The daemon writes these command lines
itself, so `--name value` options, repeatable ones and bare flags are all that is needed.
"""

import sys


class HelperArgs:
    def __init__(self, values: dict[str, str], lists: dict[str, list[str]], flags: set[str]) -> None:
        self._values = values
        self._lists = lists
        self._flags = flags

    def value(self, name: str, default: str = "") -> str:
        return self._values.get(name, default)

    def values(self, name: str) -> list[str]:
        return self._lists.get(name, [])

    def flag(self, name: str) -> bool:
        return name in self._flags


def parse_helper_args(
    prog: str,
    argv: list[str],
    single: tuple[str, ...] = (),
    repeated: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
) -> HelperArgs:
    """Options are given without their dashes; on a bad command line, a message and exit status 2."""
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    given: set[str] = set()
    index = 0
    while index < len(argv):
        option = argv[index]
        name = option[2:] if option.startswith("--") else ""
        if name in flags:
            given.add(name)
            index += 1
            continue
        if name not in single and name not in repeated:
            _fail(prog, f"unrecognized argument {option!r}")
        if index + 1 >= len(argv):
            _fail(prog, f"{option} needs a value")
        if name in single:
            values[name] = argv[index + 1]
        else:
            lists.setdefault(name, []).append(argv[index + 1])
        index += 2
    missing = [f"--{name}" for name in required if name not in values]
    if missing:
        _fail(prog, f"required: {', '.join(missing)}")
    return HelperArgs(values, lists, given)


def _fail(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr)
    raise SystemExit(2)
