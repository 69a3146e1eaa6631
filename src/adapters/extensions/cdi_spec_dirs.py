"""CdiSpecs over spec directories: `*.json` and `*.yaml` files (YAML through PyYAML's safe loader; JSON is
YAML too, and the reference library reads both with one YAML decoder)."""

import functools
import json
from collections.abc import Sequence
from typing import Any

from adapters.extensions.directory_files import ParsedDirectories
from domain.cdi import CdiSpec, CdiSpecSet, SpecError, parse_spec
from domain.errors import InvalidArgument


@functools.cache
def _no_alias_loader() -> Any:
    """The safe loader without YAML aliases: a spec has no use for them, and nested aliases make a small file
    expand into a huge document (the "billion laughs"). PyYAML loads at the first YAML spec."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("YAML aliases (*name) are not allowed in CDI specs")
            return super().compose_node(parent, index)  # type: ignore[arg-type]

    return NoAliasLoader


def _parse(path: str, data: bytes, index: int) -> CdiSpec:
    if path.endswith(".json"):
        try:
            document = json.loads(data)
        except ValueError as err:
            raise InvalidArgument(f"not valid JSON: {err}") from None
        return parse_spec(document, path, index)
    import yaml

    try:
        document = yaml.load(data, Loader=_no_alias_loader())
    except (ValueError, yaml.YAMLError) as err:
        raise InvalidArgument(f"not valid YAML: {err}") from None
    return parse_spec(document, path, index)


class DirectoryCdiSpecs:
    def __init__(self, directories: Sequence[str]) -> None:
        self._files = ParsedDirectories(directories, (".json", ".yaml"), _parse)

    def load(self) -> CdiSpecSet:
        specs, errors = [], []
        for entry in self._files.read():
            if entry.parsed is None:
                errors.append(SpecError(entry.path, entry.error))
            else:
                specs.append(entry.parsed)
        return CdiSpecSet(tuple(specs), tuple(errors))
