"""The rooms of the code keep to their rules (docs/architecture.md, "The rooms"): imports run one way,
no two modules import each other (also through others, also for type checking only), and no module
takes another's private names. Read from the source with `ast`, so nothing is imported to check it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache

from fixtures import ROOT

SRC = ROOT / "src"
BELOW = {  # a package on the left never imports one on the right
    "storage": {"api", "readmodel", "flow", "scoring", "rollups", "alerts", "tailing", "formats"},
    "readmodel": {"api", "flow", "scoring", "rollups", "tailing"},
    "slo": {"api", "readmodel", "flow", "scoring", "rollups"},
    "scoring": {"api", "readmodel", "flow"},
    "rollups": {"api", "readmodel", "flow"},
    "tailing": {"api", "readmodel", "flow", "scoring", "rollups"},
    "formats": {"api", "readmodel", "flow", "scoring", "rollups", "tailing"},
    "alerts": {"api", "readmodel", "flow"},
    "flow": {"api", "readmodel"},
}


@cache
def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted((SRC / "logpulse").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def imports(name: str) -> Iterator[tuple[str, str]]:
    """(module imported, name taken from it or '') for every logpulse import of module `name`."""
    package = name if (SRC / name.replace(".", "/") / "__init__.py").exists() else name.rpartition(".")[0]
    for node in ast.walk(modules()[name]):
        if isinstance(node, ast.Import):
            yield from ((a.name, "") for a in node.names if a.name.startswith("logpulse"))
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, node.module] if node.module else base)
            if source.startswith("logpulse"):
                for a in node.names:
                    full = f"{source}.{a.name}"
                    yield (full, "") if full in modules() else (source, a.name)


def graph() -> dict[str, set[str]]:
    return {m: {target for target, _ in imports(m) if target in modules() and target != m} for m in modules()}


def test_no_import_circles_between_modules() -> None:
    edges, circles = graph(), []
    for start in edges:  # a path back to `start` through modules it imports
        seen, todo = set(), [(start, [start])]
        while todo:
            at, path = todo.pop()
            for nxt in sorted(edges[at]):
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, [*path, nxt]))
    assert not circles, "\n".join(sorted(set(circles)))


def test_imports_run_one_way() -> None:
    def room(module: str) -> str:
        return module.split(".")[1] if "." in module else module

    wrong = [f"{m} imports {t}" for m, targets in graph().items() for t in targets if room(t) in BELOW.get(room(m), ())]
    assert not wrong, "\n".join(wrong)


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_taken_across_modules() -> None:
    taken = []
    for m in modules():
        aliases = {a.asname or a.name.rpartition(".")[2]: t for t, a in _module_imports(m)}
        for target, name in imports(m):
            if private(name):
                taken.append(f"{m}: from {target} import {name}")
        uses = [n for n in ast.walk(modules()[m]) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)]
        taken += [f"{m}: {aliases[n.value.id]}.{n.attr}" for n in uses if n.value.id in aliases and private(n.attr)]
    assert not taken, "\n".join(taken)


def _module_imports(name: str) -> Iterator[tuple[str, ast.alias]]:
    """The logpulse modules `name` binds to a name of its own (`from logpulse.api import errors`)."""
    for node in ast.walk(modules()[name]):
        names = node.names if isinstance(node, ast.Import | ast.ImportFrom) else []
        for a in names:
            target = a.name if isinstance(node, ast.Import) else f"{getattr(node, 'module', '')}.{a.name}"
            if target in modules() and (isinstance(node, ast.ImportFrom) or a.asname):
                yield target, a


def test_no_influxql_in_the_http_layer() -> None:
    """Statements are written in `readmodel/influxql.py`; `api/` only asks the read model."""
    statement = re.compile(r"\b(SELECT|SHOW|DROP|CREATE|ALTER|DELETE|GRANT)\s+\S")
    found = [
        f"{m}: {node.value[:60]!r}"
        for m in modules()
        if m.startswith("logpulse.api")
        for node in ast.walk(modules()[m])
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and statement.search(node.value)
    ]
    assert not found, "\n".join(found)


def test_no_module_over_500_lines() -> None:
    long = {p: n for p in (SRC / "logpulse").rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long
