"""The README is the front door and docs/ the manual: short, linked both ways, no dead links."""

import re
from pathlib import Path

from fixtures import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"

LINK = re.compile(r"\]\(([^)\s]+)\)")


def manual_pages() -> list[Path]:
    return sorted([README, *DOCS.glob("*.md"), *DOCS.glob("bench/*.md")])


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page (lower case, punctuation dropped, spaces to '-')."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#+ (.*)", line)):
            found.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return found


def test_readme_is_a_front_door_of_at_most_300_lines() -> None:
    assert len(README.read_text().splitlines()) <= 300


def test_readme_links_every_page_of_the_manual() -> None:
    linked = {(ROOT / target.split("#")[0]).resolve() for target in LINK.findall(README.read_text())}
    for page in DOCS.glob("*.md"):
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in manual_pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_no_page_names_the_old_benchmark_scripts() -> None:
    for page in manual_pages():
        assert "scripts/bench_" not in page.read_text(), page


ARCHITECTURE = DOCS / "architecture.md"
PACKAGE = ROOT / "src" / "logpulse"
QUOTED = re.compile(r"`([^`\s]+)`")


def test_every_path_the_architecture_page_quotes_exists() -> None:
    """`formats/registry.py`, `api/static/js/`, `tests/unit/test_formats_*.py`: from the repository, the
    package or the HTTP layer (whose table rows say `routes/`, `templates/`)."""
    missing = []
    for quoted in set(QUOTED.findall(ARCHITECTURE.read_text())):
        if ("/" not in quoted and not quoted.endswith(".py")) or quoted.startswith(("http", "/")):
            continue
        if not any(list(base.glob(quoted.rstrip("/"))) for base in (ROOT, ROOT / "src", PACKAGE, PACKAGE / "api")):
            missing.append(quoted)
    assert not missing, f"docs/architecture.md quotes paths that do not exist: {sorted(missing)}"


def test_every_name_in_the_rooms_table_is_a_module_or_definition_of_its_room() -> None:
    """A row `| \\`scoring/\\` | \\`runs\\` ... |` names modules of scoring/ (or a function or class in one)."""
    unknown = []
    for row in ARCHITECTURE.read_text().split("## The rooms", 1)[1].split("\n## ", 1)[0].splitlines():
        cells = row.split("|")
        room = cells[1].strip().strip("`") if len(cells) > 2 else ""
        if not room.endswith("/") or not (PACKAGE / room).is_dir():
            continue
        sources = list((PACKAGE / room).rglob("*.py"))
        modules = {p.stem for p in sources} | {p.name for p in (PACKAGE / room).rglob("*") if p.is_dir()}
        defined = {m for p in sources for m in re.findall(r"^(?:async def|def|class) (\w+)", p.read_text(), re.M)}
        for name in QUOTED.findall(cells[2]):
            if re.fullmatch(r"[A-Za-z_]\w*", name) and not name.isupper() and name not in modules | defined:
                unknown.append(f"{room}: {name}")
    assert not unknown, f"docs/architecture.md's rooms table names what its room does not hold: {unknown}"
