"""Mistakes a new user made, one test each: one line on stderr, exit 2, nothing
written where it must not be."""

from __future__ import annotations

import csv
import os
import sqlite3
import tomllib
from pathlib import Path

import numpy as np
import pytest

from micronas.hardware.device import builtin_devices

pytestmark = pytest.mark.system

F746 = (Path(__file__).resolve().parents[2] / "micronas" / "hardware" / "devices"
        / "stm32f746.toml").read_text()


def _one_line_error(code, err, *words):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("micronas"), err
    for w in words:
        assert w in err, err


def _profile(tmp_path, fname="d.toml", **changes) -> Path:
    raw = tomllib.loads(F746)
    raw.update(changes)
    import tomli_w

    p = tmp_path / fname
    p.write_text(tomli_w.dumps(raw))
    return p


def test_export_to_a_device_node_is_refused(cli, tmp_path):
    before = os.stat("/dev/null")
    code, _, err = cli("export", "1", "--no-check", "--out", "/dev/null")
    _one_line_error(code, err, "not a regular file")
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_rdev) == (before.st_mode, before.st_rdev)


def test_export_follows_a_symlink_and_keeps_it(cli, tmp_path):
    target = tmp_path / "real.tflite"
    link = tmp_path / "link.tflite"
    link.symlink_to(target)
    code, _, err = cli("export", "1", "--no-check", "--out", str(link))
    assert code == 0, err
    assert link.is_symlink() and target.stat().st_size > 1000


def test_existing_output_needs_force(cli, tmp_path):
    out = tmp_path / "m.tflite"
    out.write_bytes(b"keep")
    code, _, err = cli("export", "1", "--no-check", "--out", str(out))
    _one_line_error(code, err, "--force")
    assert out.read_bytes() == b"keep"
    code, _, err = cli("export", "1", "--no-check", "--out", str(out), "--force")
    assert code == 0 and out.stat().st_size > 1000
    assert (out.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(cli, tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    code, _, err = cli("export", "1", "--no-check", "--out", str(d / "m.tflite"))
    _one_line_error(code, err, "not writable")


def test_atomic_write_refuses_non_regular_files(tmp_path):
    from micronas.errors import MicronasError
    from micronas.infra.fileio import atomic_write

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(MicronasError, match="not a regular file"):
        atomic_write(fifo, lambda f: f.write("x"))
    assert fifo.exists() and not fifo.is_file()


@pytest.mark.parametrize("changes,words", [
    ({"name": "../../x/pwn"}, ["not a valid name"]),
    ({"name": "/tmp/abs"}, ["not a valid name"]),
    ({"name": "a" * 300}, ["not a valid name"]),
    ({"core": "../devices/stm32f746"}, ["not a valid name"]),
    ({"clock_mhz": float("inf")}, ["finite"]),
    ({"clock_mhz": 1e12}, ["out of range"]),
    ({"sources": 5}, ["sources"]),
    ({"runtime": {"arena_alignment_bytes": 0}}, ["arena_alignment_bytes"]),
    ({"runtime": {"arena_alignment_bytes": 12}}, ["power of two"]),
    ({"latency": {"conv": {"cycles_per_mac": float("nan")}}}, ["finite"]),
])
def test_bad_device_profiles(cli, tmp_path, changes, words):
    p = _profile(tmp_path, **changes)
    code, _, err = cli("search", "--device", str(p), "--strategy", "random", "--evaluations", "2",
                       "--indicators", "params", "--cache", str(tmp_path / "c" / "r.sqlite"),
                       "--quiet")
    _one_line_error(code, err, *words)
    assert sorted(os.listdir(tmp_path)) == ["d.toml"]  # nothing written, not even the cache


@pytest.mark.parametrize("blob", [b"\xff\xfe" + "name = 1".encode("utf-16-le"),
                                  bytes(range(256))])
def test_binary_and_utf16_device_files(cli, tmp_path, blob):
    p = tmp_path / "d.toml"
    p.write_bytes(blob)
    code, _, err = cli("cost", "1", "--device", str(p))
    _one_line_error(code, err, "UTF-8")


def test_builtin_devices_still_load():
    from micronas.hardware.device import load_device

    for name in builtin_devices():
        assert load_device(name).name == name


def test_calibrated_profile_round_trips(cli, tmp_path):
    """A quote in the path and a description that tries to inject a key: the profile is
    valid TOML, the keys are the ones written, the [runtime] table is there."""
    from micronas.hardware.device import load_device

    d = tmp_path / 'we"ird'
    d.mkdir()
    m = d / "m.csv"
    m.write_text("arch,latency_ms\n1,50\n2,60\n3,70\n")
    base = _profile(tmp_path, "base.toml", name="base",
                    description='x"\nclock_mhz = 1\n[runtime]\nname = "evil')
    out = tmp_path / "cal.toml"
    code, _, err = cli("calibrate", "--device", str(base), "--measurements", str(m), "--out",
                       str(out), "--quiet")
    assert code == 2 and "one line of text" in err  # a multi-line description is refused
    base = _profile(tmp_path, "base.toml", name="base", description='say "hi" ]] = [x]')
    code, _, err = cli("calibrate", "--device", str(base), "--measurements", str(m), "--out",
                       str(out), "--quiet")
    assert code == 0, err
    raw = tomllib.loads(out.read_text())
    assert raw["clock_mhz"] == 216 and raw["runtime"]["name"] and "latency" in raw
    assert 'say "hi"' in raw["description"]
    dev = load_device(out)
    assert dev.name == "cal" and dev.clock_mhz == 216


@pytest.mark.parametrize("text,words", [
    ("arch,latency_ms\n1,1e308\n", ["at most"]),
    ("arch,latency_ms\n1,nan\n", ["positive"]),
    ("arch,latency_ms\n1,-3\n", ["positive"]),
])
def test_bad_measurements(cli, tmp_path, text, words):
    m = tmp_path / "m.csv"
    m.write_text(text)
    code, _, err = cli("calibrate", "--measurements", str(m), "--out", str(tmp_path / "o.toml"))
    _one_line_error(code, err, *words)


def test_utf16_measurements(cli, tmp_path):
    m = tmp_path / "m.csv"
    m.write_bytes("arch,latency_ms\n1,50\n".encode("utf-16"))
    code, _, err = cli("calibrate", "--measurements", str(m), "--out", str(tmp_path / "o.toml"))
    _one_line_error(code, err, "UTF-8")


def test_fifo_and_empty_calibration_batches(cli, tmp_path):
    fifo = tmp_path / "calib.npy"
    os.mkfifo(fifo)
    code, _, err = cli("export", "1", "--no-check", "--calibration", str(fifo), "--out",
                       str(tmp_path / "a.tflite"))
    _one_line_error(code, err, "not a regular file")
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 3, 32, 32), np.float32))
    code, _, err = cli("export", "1", "--no-check", "--calibration", str(empty), "--out",
                       str(tmp_path / "b.tflite"))
    _one_line_error(code, err, "shape")


def test_foreign_sqlite_is_refused_and_untouched(cli, tmp_path):
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    before = db.read_bytes()
    code, _, err = cli("score", "1", "--indicators", "params", "--cache", str(db))
    _one_line_error(code, err, "not a micronas cache")
    assert db.read_bytes() == before and not Path(str(db) + "-wal").exists()


def test_cache_errors(cli, tmp_path):
    code, _, err = cli("score", "1", "--indicators", "params", "--cache", str(tmp_path))
    _one_line_error(code, err, "is a directory")
    good = tmp_path / "r.sqlite"
    assert cli("score", "1", "--indicators", "params", "--cache", str(good))[0] == 0
    blob = bytearray(good.read_bytes())
    for i in range(200, len(blob), 7):
        blob[i] ^= 0x5A
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(bytes(blob))
    code, _, err = cli("score", "1", "--indicators", "params", "--cache", str(bad))
    _one_line_error(code, err, "corrupted")


def test_cost_memo_follows_cache(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MICRONAS_CACHE", str(tmp_path / "default" / "r.sqlite"))
    code, _, err = cli("search", "--strategy", "random", "--evaluations", "2", "--indicators",
                       "params", "--cache", str(tmp_path / "mine" / "r.sqlite"), "--quiet")
    assert code == 0, err
    assert list((tmp_path / "mine").glob("costs-*.json"))
    assert not (tmp_path / "default").exists()


def _table(tmp_path, fake_table, edit) -> Path:
    rows = list(csv.reader(open(fake_table)))
    rows = edit(rows)
    p = tmp_path / "edited.csv"
    with open(p, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return p


@pytest.mark.parametrize("edit,words", [
    (lambda r: r[:-100], ["missing"]),
    (lambda r: r + [r[5]], ["twice"]),
    (lambda r: r[:3] + [r[3][:2] + ["nan"] + r[3][3:]] + r[4:], ["0..100"]),
    (lambda r: r[:3] + [r[3][:2]] + r[4:], ["fewer columns"]),
])
def test_bad_benchmark_tables(cli, tmp_path, fake_table, edit, words):
    p = _table(tmp_path, fake_table, edit)
    code, _, err = cli("bench", "correlate", "--benchmark", str(p), "--sample", "10",
                       "--indicators", "params", "--no-cache", "--quiet")
    _one_line_error(code, err, *words)


def test_huge_benchmark_table_refused_before_reading(cli, tmp_path):
    p = tmp_path / "big.csv"
    with open(p, "wb") as f:
        f.truncate(65 << 20)  # sparse: 65 MB of zeros, not read
    code, _, err = cli("bench", "correlate", "--benchmark", str(p), "--sample", "10",
                       "--indicators", "params", "--no-cache", "--quiet")
    _one_line_error(code, err, "MB")


@pytest.mark.parametrize("argv", [["arch", "²"], ["arch", "１２３"], ["score", "1", "--seed", "-1"],
                                  ["score", "1", "--seed", "1180591620717411303424"]])
def test_unicode_digits_and_seeds(cli, argv):
    code, _, err = cli(*argv)
    assert code == 2 and err.count("\n") == 1, err


def test_rerun_into_the_same_out_says_it_replaces(cli, tmp_path):
    argv = ["search", "--strategy", "random", "--evaluations", "2", "--indicators", "params",
            "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c.sqlite"), "--quiet"]
    code, _, err = cli(*argv)
    assert code == 0 and "replaced" not in err
    code, _, err = cli(*argv)
    assert code == 0 and "result.json" in err and "replaced" in err
