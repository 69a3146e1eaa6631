"""CdiSpecs over spec directories: `*.json` and `*.yaml` files (YAML through PyYAML's safe loader; JSON is
YAML too, and the reference library reads both with one YAML decoder)."""

import json
from collections.abc import Sequence

import yaml

from adapters.extensions.directory_files import ParsedDirectories
from domain.cdi import CdiSpec, CdiSpecSet, SpecError, parse_spec
from domain.errors import InvalidArgument


def _parse(path: str, data: bytes, index: int) -> CdiSpec:
    try:
        document = json.loads(data) if path.endswith(".json") else yaml.safe_load(data)
    except (ValueError, yaml.YAMLError) as err:
        raise InvalidArgument(f"not valid {'JSON' if path.endswith('.json') else 'YAML'}: {err}") from None
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
