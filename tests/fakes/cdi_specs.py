"""CdiSpecs over in-memory directories: {file name: text} per directory, in priority order."""

import json

import yaml

from domain.cdi import CdiSpecSet, SpecError, parse_spec
from domain.errors import InvalidArgument


class FakeCdiSpecs:
    def __init__(self, directories: list[dict[str, str]] | None = None) -> None:
        self.directories = directories if directories is not None else [{}, {}]

    def load(self) -> CdiSpecSet:
        specs, errors = [], []
        for index, files in enumerate(self.directories):
            for name in sorted(files):
                if not name.endswith((".json", ".yaml")):
                    continue
                path = f"/fake-cdi/{index}/{name}"
                try:
                    text = files[name]
                    events = yaml.parse(text) if name.endswith(".yaml") else ()
                    if any(isinstance(e, yaml.AliasEvent) for e in events):
                        raise InvalidArgument("YAML aliases are not allowed in CDI specs")
                    document = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
                    specs.append(parse_spec(document, path, index))
                except (ValueError, yaml.YAMLError) as err:
                    errors.append(SpecError(path, f"not valid: {err}"))
                except InvalidArgument as err:
                    errors.append(SpecError(path, str(err)))
        return CdiSpecSet(tuple(specs), tuple(errors))
