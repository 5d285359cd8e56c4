"""The README and docs/ stay true to the tree: links resolve, named files exist, the README stays short.

- Every relative link in README.md and docs/**/*.md (``[text](path)``, ``![alt](path)``
  and reference definitions ``[id]: path``) resolves to a file or folder inside the
  repository. http(s) and mailto links and pure ``#anchors`` are skipped; a
  ``#fragment`` or ``?query`` on a file link is dropped. Links inside code (fenced
  blocks and inline backticks) are not links and are skipped.
- README.md is under 12 KB: it is the first screen; the rest lives in docs/.
- The README links every docs page, and every docs page it links exists.
- Every repository path to a Python file the README names (its flow diagram and its
  reading order: ``server/app.py``, ``pipelines/stages/runtime.py``), and every
  backticked folder path (``models/video/avatar2d/``), exists.

The first tests run the same functions on a small synthetic tree, so each check is
shown able to fail.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
README_MAX_BYTES = 12 * 1024

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
# A code span may wrap lines but not cross a blank line (an unmatched backtick hides nothing).
_INLINE_CODE = re.compile(r"(`+)(?!`)(?:(?!\n[ \t]*\n).)*?(?<!`)\1(?!`)", re.DOTALL)
# [text](target) and ![alt](target), target optionally in <>, optionally followed by a title.
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
_REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
_SKIPPED_SCHEMES = ("http://", "https://", "mailto:")
# A repository path to a Python file: at least one folder, as in server/app.py.
_PY_PATH = re.compile(r"(?<![\w./~-])((?:[a-z_][a-z0-9_]*/)+[a-z_][a-z0-9_]*\.py)\b")
# A backticked folder path, as in `models/video/avatar2d/`.
_DIR_PATH = re.compile(r"`((?:[a-z_][a-z0-9_-]*/)+)`")


# --- the checks, as functions ---------------------------------------------------------


def markdown_pages(root: Path) -> list[Path]:
    """README.md and every page under docs/."""
    pages = [root / "README.md"] if (root / "README.md").exists() else []
    return pages + sorted((root / "docs").rglob("*.md"))


def strip_code(text: str) -> str:
    """The text without fenced code blocks and inline code spans (their brackets are not links)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def link_targets(text: str) -> list[str]:
    """Every link target in a markdown text, as written."""
    prose = strip_code(text)
    found = [m.group(1) for m in _INLINE_LINK.finditer(prose)]
    found += [m.group(1) for m in _REFERENCE_DEF.finditer(prose)]
    return [t[1:-1] if t.startswith("<") and t.endswith(">") else t for t in found]


def local_path(target: str) -> str | None:
    """The file part of a relative link, or None for external links and pure anchors."""
    if target.lower().startswith(_SKIPPED_SCHEMES) or target.startswith("#"):
        return None
    path = re.split(r"[#?]", target, maxsplit=1)[0]
    return unquote(path) or None


def broken_links(page: Path, root: Path) -> list[str]:
    """Relative link targets of ``page`` that name nothing inside ``root``."""
    broken = []
    root = root.resolve()
    for target in link_targets(page.read_text(encoding="utf-8")):
        path = local_path(target)
        if path is None:
            continue
        base = root if path.startswith("/") else page.parent
        resolved = (base / path.lstrip("/")).resolve()
        if not resolved.is_relative_to(root) or not resolved.exists():
            broken.append(target)
    return broken


def named_repo_paths(text: str) -> list[str]:
    """Python files (anywhere, code blocks included) and backticked folders a text names."""
    paths = [m.group(1) for m in _PY_PATH.finditer(text)]
    paths += [m.group(1) for m in _DIR_PATH.finditer(text)]
    return sorted(set(paths))


def missing_repo_paths(text: str, root: Path) -> list[str]:
    return [p for p in named_repo_paths(text) if not (root / p).exists()]


def linked_docs_pages(readme: Path, root: Path) -> set[Path]:
    """The docs pages the README links to (resolved paths)."""
    pages = set()
    for target in link_targets(readme.read_text(encoding="utf-8")):
        path = local_path(target)
        if path and path.endswith(".md") and path.lstrip("./").startswith("docs/"):
            pages.add((root / path).resolve())
    return pages


# --- the checks can fail --------------------------------------------------------------


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    (tmp_path / "docs" / "img").mkdir(parents=True)
    (tmp_path / "docs" / "img" / "plot.png").write_bytes(b"png")
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "app.py").write_text("")
    (tmp_path / "docs" / "guide.md").write_text(
        "[back](../README.md) ![plot](img/plot.png) [gone](missing.md#part) [web](https://example.org)\n"
        "[anchor](#top) [mail](mailto:a@b.c) [out](../../elsewhere.md)\n"
        "`[not a link](nowhere.md)`\n\n```\n[also not](nowhere.md)\n```\n"
        "[ref]: other.md\n\nA stray ` backtick.\n\n[after](late.md) and a `closing one`.\n"
    )
    (tmp_path / "README.md").write_text(
        "See [the guide](docs/guide.md) and [the plot](docs/img/plot.png).\n"
        "Open `server/app.py`, then `server/gone.py` and `models/video/`.\n"
        "```\n[ pipelines/stages/runtime.py ]\n```\n"
    )
    return tmp_path


def test_broken_links_are_found(tree: Path) -> None:
    assert broken_links(tree / "docs" / "guide.md", tree) == ["missing.md#part", "../../elsewhere.md", "late.md", "other.md"]
    assert broken_links(tree / "README.md", tree) == []


def test_missing_paths_are_found(tree: Path) -> None:
    text = (tree / "README.md").read_text()
    assert named_repo_paths(text) == ["models/video/", "pipelines/stages/runtime.py", "server/app.py", "server/gone.py"]
    assert missing_repo_paths(text, tree) == ["models/video/", "pipelines/stages/runtime.py", "server/gone.py"]


def test_linked_docs_pages_are_found(tree: Path) -> None:
    assert linked_docs_pages(tree / "README.md", tree) == {(tree / "docs" / "guide.md").resolve()}


# --- the repository -------------------------------------------------------------------


def test_readme_is_the_first_screen() -> None:
    size = README.stat().st_size
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; keep it under {README_MAX_BYTES} and move detail to docs/"


@pytest.mark.parametrize("page", markdown_pages(REPO_ROOT), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page, REPO_ROOT) == [], f"{page.relative_to(REPO_ROOT)}: links to nothing"


def test_readme_links_every_docs_page() -> None:
    linked = linked_docs_pages(README, REPO_ROOT)
    assert linked, "README.md links no docs page"
    missing = sorted(str(p.relative_to(REPO_ROOT)) for p in linked if not p.exists())
    assert missing == [], f"README.md links docs pages that do not exist: {missing}"
    unlinked = sorted(str(p.relative_to(REPO_ROOT)) for p in DOCS.glob("*.md") if p.resolve() not in linked)
    assert unlinked == [], f"docs pages the README does not link: {unlinked}"


def test_readme_names_only_existing_files() -> None:
    missing = missing_repo_paths(README.read_text(encoding="utf-8"), REPO_ROOT)
    assert missing == [], f"README.md names paths that do not exist: {missing}"
