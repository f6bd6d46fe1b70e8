"""Progress bars: on stderr, and off a terminal a line after 2 s, every 5 s and a last one."""


from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_progress_goes_to_stderr_when_piped(cli, monkeypatch):
    """Defect: long runs printed nothing when stdout was piped (tqdm disabled off a TTY).
    Captured output is not a terminal; the delay is set to 0 so the run need not last."""
    from micronas.cli import render

    monkeypatch.setattr(render, "PIPED_DELAY_S", 0.0)
    code, out, err = cli("search", "--strategy", "random", "--evaluations", "12", "--no-cache")
    assert code == 0, err
    assert "search (random)" in err and "architecture" in out
    assert "search (random)" not in out
    # every evaluation is counted (the 12 drawn, the re-scoring of the best ones that
    # measures the objective's noise, the final architecture's), and the last line is
    # printed although the run ended before the first interval
    from micronas.search.run import PARSIMONY_TOP

    n = 12 + PARSIMONY_TOP + 1
    assert f"{n}/{n}" in err.splitlines()[-1] and "100%" in err.splitlines()[-1]


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _piped_bar(monkeypatch, total: int):
    """render.progress writing to a non-terminal buffer, on a clock the test moves."""
    import io

    from micronas.cli import render

    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    bar, clock = render.progress(total, "work"), _Clock()
    bar._time, bar.start_t, bar.last_print_t = clock, 0.0, 0.0
    return bar, clock, buf


def _lines(buf) -> list[str]:
    return [ln for ln in buf.getvalue().replace("\r", "\n").split("\n") if ln.strip()]


def test_piped_progress_prints_a_last_line_after_the_delay(monkeypatch):
    """Defect: a piped run of 2-5 s printed no line at all (tqdm prints a kept bar's last
    line only if it printed one before)."""
    bar, clock, buf = _piped_bar(monkeypatch, 4)
    for t in (0.5, 1.0, 2.5, 3.0):
        clock.t = t
        bar.update(1)
    assert buf.getvalue() == ""  # not yet 5 s since the start
    bar.close()
    lines = _lines(buf)
    assert len(lines) == 1 and "work" in lines[0] and "4/4" in lines[0]


def test_piped_progress_is_silent_for_quick_runs_and_periodic_for_long(monkeypatch):
    bar, clock, buf = _piped_bar(monkeypatch, 3)
    clock.t = 1.5
    bar.update(3)
    bar.close()
    assert buf.getvalue() == ""  # under the 2 s delay: nothing

    bar, clock, buf = _piped_bar(monkeypatch, 30)
    for i in range(30):
        clock.t = i
        bar.update(1)
    bar.close()
    lines = _lines(buf)
    # lines at 5, 10, ... 25 s (every 5 s), then the last one
    assert len(lines) == 6 and "30/30" in lines[-1]
