"""Print the module files (relative to the modules directory) that loading MODULE needs, dependencies first,
from depmod's modules.dep. A module built into the kernel prints nothing."""

import sys
from pathlib import Path


def main(modules_dir: str, module: str) -> None:
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (Path(modules_dir) / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[Path(path).name.split(".ko")[0].replace("-", "_")] = path
    ordered: list[str] = []

    def visit(path: str) -> None:
        for dep in deps.get(path, []):
            visit(dep)
        if path not in ordered:
            ordered.append(path)

    start = by_name.get(module.replace("-", "_"))
    if start is not None:
        visit(start)
    print("\n".join(ordered))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
