"""The repository stands on its own: the documents, code and tests cite only what is in it.

- The hardening guide's known faults are told in docs/guide-notes.md, and everything cites that file
  by section; no file cites an outside errata list (the word is spelled in two halves below, so
  this file does not trip its own test).
- No file (but this one, for its samples) names a path of a particular machine's workspace outside the checkout (a sibling
  `shared` folder, the development machine's work tree, worktrees, venvs).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__", "test-artifacts", "node_modules",
             ".venv", "venv", "build", "dist"}
OUTSIDE_LIST_WORD = "ERR" + "ATA"
# Paths of a development machine's workspace: never in the repository (an image's own WORKDIR is not one).
MACHINE_PATHS = re.compile(r"\.\./shared\b|/work/(?:shared|main|wt|venv|coord|\.library|\.mirror)\b")


def repository_files() -> list[Path]:
    """The files of the checkout: git's list (tracked and untracked, not ignored), else a walk."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True, timeout=60).stdout
        paths = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        paths = [p for p in ROOT.rglob("*") if not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return sorted(p for p in paths if p.is_file() and not p.name.endswith(".egg-info")
                  and not any(part.endswith(".egg-info") for part in p.relative_to(ROOT).parts))


def text_of(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


def offending_lines(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in repository_files():
        if path == Path(__file__).resolve():
            continue  # its own samples of what is refused
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:160]}")
    return found


def test_nothing_cites_an_outside_errata_list() -> None:
    found = offending_lines(re.compile(OUTSIDE_LIST_WORD))
    assert not found, "cite docs/guide-notes.md (by section) instead:\n" + "\n".join(found)


def test_no_file_names_a_path_outside_the_repository() -> None:
    found = offending_lines(MACHINE_PATHS)
    assert not found, "paths outside the repository:\n" + "\n".join(found)


@pytest.mark.parametrize(("line", "bad"), [
    ("see ../shared/testdata/trivy", True),
    ("read /work/shared/CATALOG.md", True),
    ("cd /work/wt/i13 && pytest", True),
    ("WORKDIR /work", False),
    ("REGAUDIT_STATE_DIR=/work/.regaudit", False),
    ("tests/fixtures/upstream/trivy", False),
])
def test_the_path_pattern_sees_what_it_must(line: str, bad: bool) -> None:
    assert bool(MACHINE_PATHS.search(line)) is bad


def test_guide_notes_anchors_cited_exist() -> None:
    """Every guide-notes anchor cited anywhere (`docs/guide-notes.md` + `#section`) names a section."""
    notes = (ROOT / "docs" / "guide-notes.md").read_text(encoding="utf-8")
    anchors = {re.sub(r"[^a-z0-9 -]", "", title.strip().lower()).replace(" ", "-")
               for title in re.findall(r"^#{2,4} (.+)$", notes, re.M)}
    cited = re.compile(r"docs/guide-notes\.md#([a-z0-9-]+)")
    missing = []
    for path in repository_files():
        text = text_of(path)
        for anchor in cited.findall(text or ""):
            if anchor not in anchors:
                missing.append(f"{path.relative_to(ROOT)}: #{anchor}")
    assert anchors and not missing, missing
