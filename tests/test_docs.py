"""Docs that cannot rot: every command of the README's five-minute tour runs and exits 0, and
every relative link in README.md and docs/ resolves to a file (and its #anchor to a heading).

The tour runs in-process in a scratch folder (its `build/` outputs land there), in the README's
order: later commands read what earlier ones wrote (the model, the search). The FPGA step is the
heavy one (nextpnr, tens of seconds) and has its own test."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ecomac.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
TOUR_HEADING = "## A five-minute tour"
# pages other branches write (their links are checked once the page is there)
PENDING_PAGES = {"emulation.md", "networks.md", "hwsim.md", "accelerators.md"}


def tour_commands() -> list[str]:
    """Every `$ ecomac ...` line of the README's tour section, in order."""
    text = README.read_text()
    assert TOUR_HEADING in text, f"README.md has no section {TOUR_HEADING!r}"
    section = text.split(TOUR_HEADING, 1)[1].split("\n## ", 1)[0]
    return [line.strip()[2:] for line in section.splitlines() if line.strip().startswith("$ ecomac ")]


def _run(cmd: str, capsys) -> None:
    argv = shlex.split(cmd)
    assert argv[0] == "ecomac"
    code = main(argv[1:])
    out = capsys.readouterr()
    assert code == 0, f"`{cmd}` exited {code}: {out.err[-800:]}"


def test_tour_has_every_step():
    cmds = tour_commands()
    for what in ("verilog", "energy op", "nn train", "nn eval", "--datapath mfmac", "alwann search", "alwann pick",
                 "nn hwsim", "--arch tile-in", "fpga"):
        assert any(what in c for c in cmds), f"the tour shows no `{what}` command"


def test_readme_tour(tmp_path, monkeypatch, capsys):
    """Every tour command but the FPGA run, in order, each exit status 0."""
    monkeypatch.chdir(tmp_path)
    cmds = [c for c in tour_commands() if not c.startswith("ecomac fpga")]
    for cmd in cmds:
        _run(cmd, capsys)
    assert (tmp_path / "build").is_dir()


def test_readme_tour_fpga(tmp_path, monkeypatch, capsys):
    """The tour's FPGA place and route (heavy: yosys + nextpnr, tens of seconds)."""
    monkeypatch.chdir(tmp_path)
    cmds = [c for c in tour_commands() if c.startswith("ecomac fpga")]
    assert cmds
    for cmd in cmds:
        _run(cmd, capsys)


# ---- links ---------------------------------------------------------------------------------------
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return [README] + sorted(DOCS.glob("*.md"))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in page.read_text().splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def _links(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)      # not inside code blocks
    for m in _LINK.finditer(text):
        yield m.group(1) or m.group(2)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    missing, pending = [], []
    for target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):            # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            (pending if Path(path).name in PENDING_PAGES and dest.parent == DOCS else missing).append(target)
            continue
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)}: links that do not resolve: {missing}"
    if pending:
        pytest.skip(f"pages other branches add, not here yet: {pending}")


def test_every_docs_page_is_in_the_index():
    index = (DOCS / "index.md").read_text()
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, f"docs/index.md does not link {page.name}"


def test_readme_stays_short():
    assert len(README.read_text().splitlines()) <= 160, "README.md grows past ~150 lines: move detail to docs/"
