"""The CdiSpecs and OciHooks contracts: the in-memory fakes and the directory adapters read the same files
alike (JSON and YAML specs, directory priority, broken files reported by name, changes seen at once)."""

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.extensions.cdi_spec_dirs import DirectoryCdiSpecs
from adapters.extensions.hook_dirs import DirectoryOciHooks
from domain import cdi
from domain.errors import NotFound
from ports.cdi_specs import CdiSpecs
from ports.oci_hooks import OciHooks
from tests.fakes.cdi_specs import FakeCdiSpecs
from tests.fakes.oci_hooks import FakeOciHooks

SPEC_JSON = json.dumps({"cdiVersion": "0.6.0", "kind": "example.com/gpu",
                        "devices": [{"name": "gpu0", "containerEdits": {"env": ["FROM=json"]}}]})  # fmt: skip
SPEC_YAML = """\
cdiVersion: "1.1.0"
kind: example.com/nic
devices:
  - name: nic0
    containerEdits:
      env: ["FROM=yaml"]
      deviceNodes:
        - path: /dev/nic0
          type: c
          major: 10
          minor: 200
"""


@dataclass
class Dirs:
    """N directories in priority order, whatever backs them."""

    put: Callable[[int, str, str], None]
    remove: Callable[[int, str], object]


@pytest.fixture(params=["fake", "directories"])
def cdi_dirs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[CdiSpecs, Dirs]]:
    if request.param == "fake":
        fake = FakeCdiSpecs([{}, {}])
        yield fake, Dirs(lambda i, n, t: fake.directories[i].__setitem__(n, t),
                         lambda i, n: fake.directories[i].pop(n))  # fmt: skip
        return
    paths = [tmp_path / "etc-cdi", tmp_path / "run-cdi"]
    paths[0].mkdir()  # the second one appears only when a test writes to it

    def put(index: int, name: str, text: str) -> None:
        paths[index].mkdir(exist_ok=True)
        target = paths[index] / name
        target.write_text(text)
        stat = target.stat()  # a rewrite within one mtime tick must still be seen as new
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    yield DirectoryCdiSpecs([str(p) for p in paths]), Dirs(put, lambda i, n: (paths[i] / n).unlink())


def env_of(specs: CdiSpecs, device: str) -> tuple[str, ...]:
    resolved = cdi.resolve(specs.load(), [device])
    return resolved.parts[-1][1].env


def test_json_and_yaml_specs_are_read(cdi_dirs: tuple[CdiSpecs, Dirs]) -> None:
    specs, dirs = cdi_dirs
    assert specs.load() == cdi.CdiSpecSet()
    dirs.put(0, "gpu.json", SPEC_JSON)
    dirs.put(0, "nic.yaml", SPEC_YAML)
    dirs.put(0, "notes.txt", "not a spec")
    loaded = specs.load()
    assert sorted(s.kind for s in loaded.specs) == ["example.com/gpu", "example.com/nic"]
    assert not loaded.errors
    assert env_of(specs, "example.com/nic=nic0") == ("FROM=yaml",)


def test_a_later_directory_wins(cdi_dirs: tuple[CdiSpecs, Dirs]) -> None:
    specs, dirs = cdi_dirs
    dirs.put(0, "gpu.json", SPEC_JSON)
    dirs.put(1, "gpu-dynamic.json", SPEC_JSON.replace("FROM=json", "FROM=dynamic"))
    assert env_of(specs, "example.com/gpu=gpu0") == ("FROM=dynamic",)


def test_broken_files_are_reported_by_path_and_changes_are_seen(cdi_dirs: tuple[CdiSpecs, Dirs]) -> None:
    specs, dirs = cdi_dirs
    dirs.put(0, "broken.yaml", "cdiVersion: [unclosed")
    dirs.put(0, "unknown.json", SPEC_JSON.replace('"kind"', '"kinds"'))
    dirs.put(1, "aliases.yaml", SPEC_YAML.replace('env: ["FROM=yaml"]', "env: &e [A=1]\n      x: *e"))
    loaded = specs.load()
    assert not loaded.specs
    reasons = {os.path.basename(e.path): e.message for e in loaded.errors}
    assert sorted(reasons) == ["aliases.yaml", "broken.yaml", "unknown.json"]
    assert "aliases" in reasons["aliases.yaml"], "aliases could expand a small file into a huge document"
    with pytest.raises(NotFound, match=r"broken\.yaml"):
        cdi.resolve(loaded, ["example.com/gpu=gpu0"])
    dirs.put(0, "unknown.json", SPEC_JSON)
    dirs.remove(0, "broken.yaml")
    dirs.remove(1, "aliases.yaml")
    loaded = specs.load()
    assert not loaded.errors and [s.kind for s in loaded.specs] == ["example.com/gpu"]


def hook_json(path: str, stage: str = "prestart") -> str:
    return json.dumps(
        {"version": "1.0.0", "hook": {"path": path}, "when": {"always": True}, "stages": [stage]}
    )


@pytest.fixture(params=["fake", "directories"])
def hook_dirs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[OciHooks, Dirs, str]]:
    program = tmp_path / "marker-hook"
    program.write_text("#!/bin/sh\n")
    if request.param == "fake":
        fake = FakeOciHooks([{}, {}], programs={str(program)})
        yield fake, Dirs(lambda i, n, t: fake.directories[i].__setitem__(n, t),
                         lambda i, n: fake.directories[i].pop(n)), str(program)  # fmt: skip
        return
    paths = [tmp_path / "usr-share-hooks", tmp_path / "etc-hooks"]
    for path in paths:
        path.mkdir()

    def put(index: int, name: str, text: str) -> None:
        target = paths[index] / name
        target.write_text(text)
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    yield (
        DirectoryOciHooks([str(p) for p in paths]),
        Dirs(put, lambda i, n: (paths[i] / n).unlink()),
        str(program),
    )


def test_hooks_are_read_and_a_later_directory_replaces_by_name(hook_dirs: tuple[OciHooks, Dirs, str]) -> None:
    hooks, dirs, program = hook_dirs
    dirs.put(0, "10-marker.json", hook_json(program))
    dirs.put(0, "README", "not a hook")
    dirs.put(1, "10-marker.json", hook_json(program, "poststop"))
    loaded = hooks.load()
    assert [(h.name, h.stages) for h in loaded.hooks] == [("10-marker.json", ("poststop",))]
    assert not loaded.errors
    dirs.remove(1, "10-marker.json")
    assert [h.stages for h in hooks.load().hooks] == [("prestart",)]


def test_broken_hooks_and_missing_programs_are_reported(hook_dirs: tuple[OciHooks, Dirs, str]) -> None:
    hooks, dirs, program = hook_dirs
    dirs.put(0, "good.json", hook_json(program))
    dirs.put(0, "missing.json", hook_json(program + "-gone"))
    dirs.put(0, "broken.json", "{")
    loaded = hooks.load()
    assert [h.name for h in loaded.hooks] == ["good.json"]
    reasons = {os.path.basename(path): why for path, why in loaded.errors}
    assert sorted(reasons) == ["broken.json", "missing.json"]
    assert "does not exist" in reasons["missing.json"] and "not JSON" in reasons["broken.json"]
