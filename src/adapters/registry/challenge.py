"""Parsing `WWW-Authenticate` (RFC 7235) as registries send it.

`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"` names
where to get a token and for what; `Basic realm="..."` asks for credentials on every request. A header may
hold several challenges; parameters are tokens or quoted strings with backslash escapes.
"""

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SPACE = re.compile(r"[ \t]*")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scope(self) -> str:
        return self.params.get("scope", "")


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in the header, in order; malformed tails are dropped, never raised."""
    challenges: list[Challenge] = []
    position = 0
    length = len(header)
    while position < length:
        position = _skip(header, position, " \t,")
        scheme = _TOKEN.match(header, position)
        if scheme is None:
            break
        position = scheme.end()
        params: dict[str, str] = {}
        while True:
            start = _skip(header, position, " \t,")
            name = _TOKEN.match(header, start)
            if name is None:
                position = start
                break
            after = _SPACE.match(header, name.end())
            after_name = after.end() if after else name.end()
            if after_name >= length or header[after_name] != "=":
                position = start  # the next token starts a new challenge
                break
            if after_name + 1 >= length or header[after_name + 1] in "=,":
                position = _skip(header, after_name, "=")  # a token68 (`Negotiate abc==`): no parameters
                continue
            value_start = _SPACE.match(header, after_name + 1)
            cursor = value_start.end() if value_start else after_name + 1
            if cursor < length and header[cursor] == '"':
                value, cursor = _quoted(header, cursor)
            else:
                token = _TOKEN.match(header, cursor)
                value, cursor = (token.group(), token.end()) if token else ("", cursor)
            params[name.group().lower()] = value
            position = cursor
        challenges.append(Challenge(scheme.group().lower(), params))
    return challenges


def _skip(text: str, position: int, characters: str) -> int:
    while position < len(text) and text[position] in characters:
        position += 1
    return position


def _quoted(text: str, position: int) -> tuple[str, int]:
    """The unescaped quoted string starting at text[position] == '"', and the index after it."""
    value = []
    position += 1
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            value.append(text[position + 1])
            position += 2
            continue
        if char == '"':
            return "".join(value), position + 1
        value.append(char)
        position += 1
    return "".join(value), position
