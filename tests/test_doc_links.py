"""Every relative link of README.md and docs/*.md leads somewhere: an existing file, and a heading or anchor of it."""

from __future__ import annotations

import re

import pytest
from readme_blocks import DOCS, ROOT

#: A Markdown link or image target: ``[text](target)`` or ``![alt](target)``.
LINK = re.compile(r"\]\(([^()\s]+)\)")
#: Fenced code blocks and inline code, where brackets are not links.
CODE = re.compile(r"^```.*?^```$|`[^`\n]*`", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (not ``-`` or ``_``), spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors a Markdown page offers: its headings' (GitHub's ``-1``, ``-2`` for repeats) and ``<a id>``s."""
    found: set[str] = set(re.findall(r'<a id="([^"]+)"', text))
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#+ (.+)$", CODE.sub("", text), re.M):
        base = slug(heading)
        found.add(base if base not in seen else f"{base}-{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    return found


def relative_links(text: str) -> list[str]:
    """The link targets of ``text`` outside code that are neither URLs nor mail addresses."""
    return [target for target in LINK.findall(CODE.sub("", text)) if not re.match(r"[a-z]+:", target)]


def test_the_link_check_can_fail() -> None:
    assert slug("Running on several hosts (Dask)") == "running-on-several-hosts-dask"
    assert slug("The test suite's wall time (README command (b))") == "the-test-suites-wall-time-readme-command-b"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}
    assert relative_links("[x](docs/a.md#b) `[y](z.md)` ![i](p.png) [u](https://e.org)") == ["docs/a.md#b", "p.png"]


@pytest.mark.parametrize("name", sorted(DOCS))
def test_relative_links_resolve(name: str) -> None:
    links = relative_links(DOCS[name])
    for target in links:
        path, _, anchor = target.partition("#")
        file = (ROOT / name).parent / path if path else ROOT / name
        assert file.resolve().is_relative_to(ROOT) and file.exists(), f"{name}: link to a missing file: {target}"
        if anchor:
            assert file.suffix == ".md", f"{name}: anchor on a file that is not Markdown: {target}"
            assert anchor in anchors(file.read_text()), f"{name}: no heading or anchor #{anchor} in {path or name}"
    if name == "README.md":
        # The front page leads to every page of the reference.
        for page in DOCS:
            if page != name:
                assert any((ROOT / t.partition("#")[0]).resolve() == ROOT / page for t in links), \
                    f"README.md does not link to {page}"


def test_docs_pages_start_with_their_purpose() -> None:
    # Each page: a title, then one line saying what it is for.
    for name, text in DOCS.items():
        if name.startswith("docs/"):
            lines = text.splitlines()
            assert lines[0].startswith("# ") and lines[1] == "" and lines[2].strip(), name
            assert not lines[3].strip(), f"{name}: the purpose is one line"
