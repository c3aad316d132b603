"""The repository is self-contained: no tracked text file cites files outside it (the project's private research
notes, absolute paths of the machine it was written on) or the project's own issue numbers. What the code relies
on from outside is written into docs/ (neurons.md, papers.md, energy_sources.md) with the original sources."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh", ".txt"}

# Pieces joined at run time so that this file does not match its own patterns.
NOTE_NAMES = ("peers", "rev", "saf_iir", "hw")
FORBIDDEN = {
    "a research-note file": re.compile(r"(?<![\w.-])(?:%s)\.md\b" % "|".join(NOTE_NAMES)),
    "the research-notes folder": re.compile("shared" + "/research"),
    "an absolute path on the development machine": re.compile("/" + "work/"),
    "an issue number": re.compile(r"\bissues?\s+#?\d", re.IGNORECASE),
}

# Lines that must keep a match, with the reason: (path, text on the line).
ALLOWED: list[tuple[str, str]] = []

def tracked_text_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return sorted(p for p in out.decode().split("\0") if p and Path(p).suffix in TEXT_SUFFIXES
                  and Path(p).name != Path(__file__).name and (ROOT / p).is_file())


def violations(paths) -> list[str]:
    found = []
    for path in paths:
        for no, line in enumerate((ROOT / path).read_text(encoding="utf-8").splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line) and not any(path == p and text in line for p, text in ALLOWED):
                    found.append(f"{path}:{no}: cites {what}: {line.strip()[:100]}")
    return found


def test_no_references_outside_the_repository():
    found = violations(tracked_text_files())
    assert not found, ("point these at docs/ (neurons.md, papers.md, energy_sources.md) or at the original "
                       "paper/code, and say what the thing is instead of an issue number:\n" + "\n".join(found))


def test_patterns_catch_what_they_must():
    bad = ["see " + "rev" + ".md A5", "(" + "peers" + ".md §3.1)", "shared" + "/research/hw.md",
           "Issue" + " 4's kinds", "issue" + " #12", "/" + "work/shared"]
    good = ["snnsim/trev.py", "docs/papers.md, T-RevSNN inverse", "docs/hwmodel.md", "norse/norse#411",
            "https://github.com/norse/norse/issues/411", "an issue with the data"]
    assert all(any(p.search(s) for p in FORBIDDEN.values()) for s in bad)
    assert not any(p.search(s) for p in FORBIDDEN.values() for s in good)
