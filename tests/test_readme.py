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
