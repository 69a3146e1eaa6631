"""docs/architecture.md stays true to the code: the ports in its picture and table are exactly the port
modules and Protocols in src/ports, the adapter, fake and contract paths it names exist, and every RPC lands
in the handler module it names (the only one that defines it)."""

import ast
import re
from pathlib import Path

from adapters.cri.generated import api_pb2

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _protocols() -> dict[str, set[str]]:
    """Port module name -> the Protocol classes it defines."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "src" / "ports").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        found[path.stem] = {
            node.name
            for node in tree.body
            if isinstance(node, ast.ClassDef)
            and any(ast.unparse(base).endswith("Protocol") for base in node.bases)
        }
    return found


def _section(title: str) -> str:
    return DOC.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _table_rows(title: str) -> list[list[str]]:
    rows = [line for line in _section(title).splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def _quoted(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_picture_names_every_port_module_by_its_protocol() -> None:
    protocols = _protocols()
    block = _section("The picture").split("subgraph ports", 1)[1].split("end", 1)[0]
    nodes = dict(re.findall(r"(\w+)\[(\w+)\]", block))
    assert set(nodes) == set(protocols), "ports in the picture differ from src/ports"
    for module, protocol in nodes.items():
        assert protocol in protocols[module], f"ports/{module}.py has no Protocol {protocol}"


def test_the_table_lists_every_port_and_the_paths_it_names_exist() -> None:
    protocols = _protocols()
    rows = _table_rows("Ports, who uses them, what implements them")
    listed = {}
    for module_cell, protocol_cell, _users, adapter, fake, contract in rows:
        module = re.fullmatch(r"`ports/(\w+)\.py`", module_cell)
        assert module is not None, module_cell
        listed[module.group(1)] = set(_quoted(protocol_cell))
        for path in _quoted(adapter):
            assert (ROOT / "src" / path).is_file(), path
        for path in _quoted(fake) + _quoted(contract):
            assert (ROOT / path).is_file(), path
    assert listed == protocols


def test_every_rpc_lands_in_the_one_module_the_table_names() -> None:
    rpcs = {
        method.name
        for service in ("RuntimeService", "ImageService")
        for method in api_pb2.DESCRIPTOR.services_by_name[service].methods
    }
    rows = _table_rows("Where each RPC lands")
    named = {_quoted(rpc)[0]: _quoted(module)[0] for rpc, module, _service in rows}
    assert len(rows) == len(named) and set(named) == rpcs
    handlers = sorted((ROOT / "src" / "adapters" / "cri").glob("*.py"))
    for rpc, module in named.items():
        defining = [p for p in handlers if re.search(rf"def {rpc}\(", p.read_text())]
        assert [str(p.relative_to(ROOT / "src")) for p in defining] == [module], rpc
