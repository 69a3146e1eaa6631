"""OciHooks over in-memory directories ({file name: text} each) and a set of programs that exist."""

from domain.errors import InvalidArgument
from domain.oci_hooks import HookSet, OciHook, parse_hook


class FakeOciHooks:
    def __init__(
        self, directories: list[dict[str, str]] | None = None, programs: set[str] | None = None
    ) -> None:
        self.directories = directories if directories is not None else [{}]
        self.programs = programs if programs is not None else set()

    def load(self) -> HookSet:
        by_name: dict[str, OciHook] = {}
        errors: list[tuple[str, str]] = []
        for index, files in enumerate(self.directories):
            for name in sorted(files):
                if not name.endswith(".json"):
                    continue
                path = f"/fake-hooks/{index}/{name}"
                try:
                    hook = parse_hook(files[name], name)
                except InvalidArgument as err:
                    errors.append((path, str(err)))
                    continue
                if hook.path not in self.programs:
                    errors.append((path, f"hook program {hook.path} does not exist"))
                    continue
                by_name[name] = hook
        return HookSet(tuple(by_name.values()), tuple(errors))
