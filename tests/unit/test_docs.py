"""The README is the front door and docs/ the manual: short, linked both ways, no dead links."""

import re
from pathlib import Path

from fixtures import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PENDING_PAGES = {DOCS / "security.md"}
"""Pages the README links that are written on another branch at the same time: empty this set once
they are merged, so that their links are checked like every other."""

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
    for page in [*DOCS.glob("*.md"), *PENDING_PAGES]:
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in manual_pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if resolved in {p.resolve() for p in PENDING_PAGES}:
                continue
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_no_page_names_the_old_benchmark_scripts() -> None:
    for page in manual_pages():
        assert "scripts/bench_" not in page.read_text(), page
