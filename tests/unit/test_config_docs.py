"""`pycrio config` and docs/configuration.md come from the same schema and say the same."""

import dataclasses
import tomllib
from pathlib import Path

from app.config import Config, load, to_toml_dict
from app.config_docs import DOC_BEGIN, DOC_END, all_keys, markdown_table, render_template

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_configuration_doc_is_generated_from_the_schema() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    generated = text.partition(DOC_BEGIN)[2].partition(DOC_END)[0].lstrip("\n")
    assert generated == markdown_table(), "docs/configuration.md is stale: run `make docs`"


def test_every_key_has_a_one_line_description() -> None:
    keys = list(all_keys(Config()))
    assert keys
    for key in keys:
        assert key.doc and "\n" not in key.doc, key.name
    for section in dataclasses.fields(Config):
        assert section.metadata.get("doc"), section.name


def test_the_template_is_a_config_that_loads_back_to_the_same_values(tmp_path: Path) -> None:
    config = load(None, overrides=["log.format=json", 'runtime.runtimes.kata.path="/usr/bin/kata"'])
    template = render_template(config)
    assert "# lowest level logged" in template
    assert "(allowed: 4096 to 1099511627776 bytes)" in template
    written = tmp_path / "pycrio.toml"
    written.write_text(template)
    assert tomllib.loads(template)["log"]["format"] == "json"
    assert to_toml_dict(load(written, explicit=True)) == to_toml_dict(config)


def test_every_key_appears_in_the_template_and_the_doc() -> None:
    template, table = render_template(Config()), markdown_table()
    for key in all_keys(Config()):
        assert f"\n{key.name.rsplit('.', 1)[-1]} = " in template, key.name
        assert f"| `{key.name}` |" in table, key.name
