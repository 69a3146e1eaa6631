"""The namespace helpers' command-line parser: what the daemon writes parses; anything else exits 2."""

import pytest

from adapters.namespaces.helper_args import parse_helper_args


def test_values_repeated_options_and_flags() -> None:
    args = parse_helper_args(
        "t",
        ["--dir", "/d", "--ns", "net", "--ns", "uts", "--new-pid", "--hostname", "--odd"],
        single=("dir", "hostname"),
        repeated=("ns",),
        flags=("new-pid",),
        required=("dir",),
    )
    assert args.value("dir") == "/d" and args.value("hostname") == "--odd"
    assert args.values("ns") == ["net", "uts"] and args.values("sysctl") == []
    assert args.flag("new-pid") and not args.flag("other")
    assert args.value("absent", "default") == "default"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dir"], "--dir needs a value"),
        ([], "required: --dir"),
        (["--dir", "/d", "--bogus", "x"], "unrecognized argument '--bogus'"),
        (["--dir", "/d", "stray"], "unrecognized argument 'stray'"),
    ],
)
def test_bad_command_lines_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_helper_args("t", argv, single=("dir",), required=("dir",))
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
