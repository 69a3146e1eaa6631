"""Image references from requests cannot freeze the daemon: bounded length, patterns that cannot backtrack.

The grammar is checked against distribution's own regular expressions (the oracle below, run only on short
texts where Python's backtracking stays cheap), and every parse has a time budget.
"""

import re
import subprocess
import sys
from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain import image_reference
from domain.errors import InvalidArgument
from domain.image_reference import REFERENCE_LENGTH_MAX, ImageReference, parse

# distribution/reference's regexp.go, verbatim (RE2 syntax, which Python reads the same way here).
_GO_SEPARATOR = r"(?:[._]|__|[-]*)"
_GO_COMPONENT = rf"[a-z0-9]+(?:{_GO_SEPARATOR}[a-z0-9]+)*"
_GO_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
ORACLE = {
    "path": re.compile(rf"{_GO_COMPONENT}(?:/{_GO_COMPONENT})*"),
    "domain": re.compile(
        rf"(?:{_GO_DOMAIN_COMPONENT}(?:\.{_GO_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
    ),
    "tag": re.compile(r"[\w][\w.-]{0,127}", re.ASCII),
    "digest": re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"),
}
OURS = {
    "path": image_reference._PATH_RE,
    "domain": image_reference._DOMAIN_RE,
    "tag": image_reference._TAG_RE,
    "digest": image_reference._DIGEST_RE,
}
REFERENCE_CHARACTERS = "aZ09-_.:/@[]!é\n"
TIME_BUDGET = timedelta(milliseconds=200)


def test_texts_that_made_the_old_grammar_backtrack_are_answered_at_once() -> None:
    # In a child process: a backtracking regex holds the GIL, so a thread could not be abandoned.
    hostile = ["a" * 60 + "!", "quay.io/" + "a" * 60 + "!", "a-" * 30 + "!", "a" * 60 + ":" + "b" * 60 + "!"]
    code = (
        "from domain.image_reference import parse\nfrom domain.errors import InvalidArgument\n"
        f"for text in {hostile!r}:\n"
        "    try:\n        parse(text)\n    except InvalidArgument:\n        pass\n"
        "    else:\n        raise SystemExit('accepted ' + text)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd="src", capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_an_overlong_reference_is_refused_before_any_pattern_and_quoted_briefly() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse("a" * 10_000_000)
    assert f"at most {REFERENCE_LENGTH_MAX}" in str(err.value)
    assert len(str(err.value)) < 300


def test_the_longest_valid_reference_fits_the_bound() -> None:
    name = "quay.io/" + "a" * (image_reference.NAME_TOTAL_LENGTH_MAX - len("quay.io/"))
    text = f"{name}:{'t' * 128}@sha512:{'0' * 128}"
    assert len(text) == REFERENCE_LENGTH_MAX
    assert parse(text).tag == "t" * 128


@pytest.mark.parametrize("part", sorted(OURS))
@settings(deadline=TIME_BUDGET, max_examples=400)
@given(text=st.text(alphabet=REFERENCE_CHARACTERS, max_size=14))
def test_each_piece_of_the_grammar_accepts_what_distribution_accepts(part: str, text: str) -> None:
    assert bool(OURS[part].fullmatch(text)) == bool(ORACLE[part].fullmatch(text))


@settings(deadline=TIME_BUDGET, max_examples=500)
@given(text=st.text(alphabet=REFERENCE_CHARACTERS, max_size=2 * REFERENCE_LENGTH_MAX))
@example("a" * 40 + "!")
@example("-" * 500 + "a")
def test_any_text_is_parsed_or_refused_within_the_budget(text: str) -> None:
    try:
        parsed = parse(text)
    except InvalidArgument:
        return
    assert isinstance(parsed, ImageReference)
    assert parse(str(parsed)) == parsed


ALPHA_NUMERIC = st.text(alphabet="abz059", min_size=1, max_size=4)
COMPONENT = st.builds(
    lambda first, rest: first + "".join(sep + run for sep, run in rest),
    ALPHA_NUMERIC,
    st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "---"]), ALPHA_NUMERIC), max_size=3),
)
PATH = st.lists(COMPONENT, min_size=1, max_size=4).map("/".join)
TAG = st.builds(lambda a, b: a + b, st.sampled_from("aZ9_"), st.text(alphabet="aZ9_.-", max_size=20))


@settings(deadline=TIME_BUDGET, max_examples=300)
@given(path=PATH, tag=st.none() | TAG)
def test_valid_references_parse_to_their_parts(path: str, tag: str | None) -> None:
    text = f"127.0.0.1:5000/{path}" + (f":{tag}" if tag else "")
    assert ORACLE["path"].fullmatch(path)
    assert parse(text) == ImageReference("127.0.0.1:5000", path, tag or "")
