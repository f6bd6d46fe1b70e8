"""The user's mistakes and ours: exit 2 with one line, or exit 1 with the traceback saved."""

from __future__ import annotations

import pytest

from micronas.errors import MicronasBug

pytestmark = pytest.mark.system


def test_a_user_mistake_is_one_line_exit_2(cli):
    code, _, err = cli("cost", "1", "--device", "stm32f74")
    assert code == 2 and err.count("\n") == 1 and "did you mean 'stm32f746'" in err


@pytest.mark.parametrize("exc", [MicronasBug("the planner overlapped two live buffers"),
                                 KeyError("layer")])
def test_a_bug_is_exit_1_with_the_traceback_saved(cli, monkeypatch, tmp_path, exc):
    from micronas import api

    monkeypatch.setenv("MICRONAS_CACHE", str(tmp_path / "cache" / "results.sqlite"))

    def broken(*_a, **_k):
        raise exc

    monkeypatch.setattr(api, "cost", broken)
    code, out, err = cli("cost", "1")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "a bug in micronas, not in your input" in err and "please report" in err
    saved = list((tmp_path / "cache" / "bugs").glob("bug-*.txt"))
    assert len(saved) == 1 and str(saved[0]) in err
    text = saved[0].read_text()
    assert "Traceback" in text and "broken" in text and type(exc).__name__ in text


def test_a_failed_run_leaves_no_empty_output_folder(cli, tmp_path):
    out = tmp_path / "runs" / "first"
    code, _, err = cli("search", "--max-latency-ms", "0.5", "--out", str(out))
    assert code == 2 and "try --max-latency-ms" in err
    assert not (tmp_path / "runs").exists()
    keep = tmp_path / "mine"
    keep.mkdir()
    code, _, _ = cli("search", "--max-latency-ms", "0.5", "--out", str(keep))
    assert code == 2 and keep.is_dir()  # a folder that was there before stays
