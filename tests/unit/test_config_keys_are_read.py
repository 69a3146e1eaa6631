"""No configuration key is accepted and then ignored: walk the config schema and find, for every key, the
code that reads it.

A key `section.name` counts as read where the sources (other than app/config.py, which only defines and
validates) contain `.section.name`, e.g. `c.image.signature_policy`. The few keys read through an object
handed over whole are listed in INDIRECT with the exact code that reads them, so the test still fails if
that code goes away. A key whose type allows a single value is checked by the loader itself.
"""

import dataclasses
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from app.config import Config

SRC = Path(__file__).resolve().parents[2] / "src"

# key -> (file under src, pattern): where a key handed over inside its section object is read.
INDIRECT = {
    "log.level": ("app/logging.py", r"config\.level\b"),
    "log.format": ("app/logging.py", r"config\.format\b"),
    "grpc.listen": ("app/config.py", r"self\.grpc\.listen\.removeprefix"),
    "runtime.runtimes.*.path": ("app/container.py", r"handler\.path\b"),
    "runtime.runtimes.*.root": ("app/container.py", r"handler\.root\b"),
    "tracing.endpoint": ("app/tracing.py", r"config\.endpoint\b"),
    "tracing.sampling_rate": ("app/tracing.py", r"config\.sampling_rate\b"),
}
# Where the pieces above are handed over: they only count if these hold too.
HANDED_OVER = [
    ("app/main.py", r"configure_logging\(config\.log\)"),
    ("app/container.py", r"c\.socket_path"),
    ("app/container.py", r"runtimes\.items\(\)"),
    ("app/container.py", r"\.runtime\.runtimes\b"),
    ("app/main.py", r"start_tracing\(config\.tracing\)"),
]


def leaf_keys(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(hint):
            yield from leaf_keys(typing.cast(type[Any], hint), f"{key}.")
        elif typing.get_origin(hint) is dict and dataclasses.is_dataclass(typing.get_args(hint)[1]):
            yield key, hint
            yield from leaf_keys(typing.get_args(hint)[1], f"{key}.*.")
        else:
            yield key, hint


def sources() -> dict[str, str]:
    return {str(path.relative_to(SRC)): path.read_text() for path in SRC.rglob("*.py")}


def test_every_config_key_is_read_somewhere() -> None:
    code = sources()
    readers = "\n".join(text for name, text in code.items() if name != "app/config.py")
    for where, pattern in HANDED_OVER:
        assert re.search(pattern, code[where]), f"{where} no longer hands config over as {pattern!r}"
    unread = []
    keys = list(leaf_keys(Config))
    assert len(keys) > 30
    for key, hint in keys:
        if typing.get_origin(hint) is Literal and len(typing.get_args(hint)) == 1:
            continue  # one permitted value, enforced by the loader
        if key in INDIRECT:
            where, pattern = INDIRECT[key]
            if re.search(pattern, code[where]):
                continue
        section, name = key.replace(".*", "").split(".")[-2:]
        if not re.search(rf"\.{re.escape(section)}\.{re.escape(name)}\b", readers):
            unread.append(key)
    assert unread == [], f"configuration keys accepted but never read: {unread}"


def test_the_walk_sees_the_trust_keys() -> None:
    keys = dict(leaf_keys(Config))
    for key in ("image.signature_policy", "image.signature_policy_dir", "image.registries_d"):
        assert key in keys
