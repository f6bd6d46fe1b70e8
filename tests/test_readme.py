"""The README's quick start runs as written and prints what the README shows.

Every ``$ `` line of the console block under "## Quick start" is run in a fresh directory
with an empty results cache; its output must equal the README's, except the seconds a
search took.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of the quick-start block, in order."""
    text = README.read_text()
    m = re.search(r"^## Quick start\n(.*?)^```console\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md has no ```console block under '## Quick start'"
    steps: list[tuple[str, list[str]]] = []
    for line in m.group(2).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before the first command: {line!r}"
            steps[-1][1].append(line)
    return steps


def _masked(lines: list[str]) -> list[str]:
    """Lines with wall times (``20.8 s``) masked and trailing spaces dropped."""
    return [re.sub(r"\b\d+(\.\d+)? s\b", "<s> s", ln).rstrip() for ln in lines]


def test_quick_start_has_three_commands():
    steps = quick_start()
    assert len(steps) == 3 and all(cmd.startswith("micronas ") for cmd, _ in steps)


@pytest.mark.parametrize("i", range(3))
def test_quick_start_command_runs_as_written(i, tmp_path):
    cmd, want = quick_start()[i]
    env = {**os.environ, "MICRONAS_CACHE": str(tmp_path / "cache" / "results.sqlite")}
    argv = shlex.split(cmd)
    r = subprocess.run([sys.executable, "-m", "micronas", *argv[1:]], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert _masked(r.stdout.splitlines()) == _masked(want), r.stdout


def test_api_example_runs(tmp_path, monkeypatch):
    """The README's API example, executed as written (in a fresh results cache)."""
    text = README.read_text()
    m = re.search(r"^## API\n.*?^```python\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md has no ```python block under '## API'"
    monkeypatch.setenv("MICRONAS_CACHE", str(tmp_path / "cache" / "results.sqlite"))
    monkeypatch.chdir(tmp_path)
    exec(compile(m.group(1), "README.md (API)", "exec"), {"__name__": "readme_api"})


HISTORY = [r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b",   # a commit hash
           r"\bissue[- ]?#?\d+", r"\bsessions? \d", r"\b(this|last|next|previous) round\b",
           r"\bstop \d+\b", r"\bredesign\b"]


def test_documents_speak_to_users():
    """README and docs name no commit hashes, issue numbers or rounds of work, and cite no
    file that is not in the repository."""
    root = README.parent
    hits = []
    for path in [README, *sorted((root / "docs").glob("*.md"))]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for pat in HISTORY:
                if re.search(pat, line, re.I):
                    hits.append(f"{path.name}:{n}: {line.strip()[:100]}")
            for ref in re.findall(r"\]\(([^)#]+)", line):  # markdown links to local files
                if "://" not in ref and not (path.parent / ref).exists():
                    hits.append(f"{path.name}:{n}: missing {ref}")
            if "method.md" in line:
                hits.append(f"{path.name}:{n}: cites method.md, which is not in the repository")
    assert not hits, "\n".join(hits)
