import json

import pytest

pytestmark = pytest.mark.integration


def test_correlate_json(cli, fake_table, tmp_path):
    code, out, err = cli("bench", "correlate", "--benchmark", str(fake_table),
                         "--sample", "40", "--indicators", "params,flops", "--json",
                         "--cache", str(tmp_path / "c.sqlite"))
    assert code == 0, err
    d = json.loads(out)
    assert d["n"] == 40 and d["dataset"] == "cifar10" and d["seed"] == 0
    assert d["indicators"]["flops"]["spearman"] > 0.8
    assert set(d["indicators"]["params"]) >= {"spearman", "kendall", "seconds_per_arch"}


def test_correlate_table_file(cli, fake_table, tmp_path):
    """--table writes every architecture's row (gzip for .gz); an existing file is refused
    before any scoring unless --force."""
    import gzip

    path = tmp_path / "t.json.gz"
    argv = ["bench", "correlate", "--benchmark", str(fake_table), "--sample", "25",
            "--indicators", "params,flops", "--no-cache", "--quiet", "--table", str(path)]
    code, out, err = cli(*argv)
    assert code == 0, err
    d = json.loads(gzip.decompress(path.read_bytes()))
    assert len(d["rows"]) == 25 and {"index", "acc", "params", "flops"} <= set(d["rows"][0])
    assert d["indicators"]["params"]["spearman"] == pytest.approx(
        __import__("scipy").stats.spearmanr([r["params"] for r in d["rows"]],
                                            [r["acc"] for r in d["rows"]]).statistic)
    before = path.read_bytes()
    code, out, err = cli(*argv)
    assert code == 2 and "--force" in err and path.read_bytes() == before
    code, out, err = cli(*argv, "--force")

    def values(rows):  # each row's compute seconds differ from run to run
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert code == 0 and values(json.loads(gzip.decompress(path.read_bytes()))["rows"]) == \
        values(d["rows"])
    assert set(d["rows"][0]["seconds"]) == {"params", "flops"}


def test_correlate_resumes_a_table(cli, fake_table, tmp_path):
    """--resume keeps the rows a table already holds and scores only the rest; a table
    scored with other settings is refused in one line."""
    import gzip

    path = tmp_path / "t.json.gz"
    base = ["bench", "correlate", "--benchmark", str(fake_table), "--indicators", "params,flops",
            "--no-cache", "--quiet", "--table", str(path)]
    assert cli(*base, "--sample", "10")[0] == 0
    small = json.loads(gzip.decompress(path.read_bytes()))
    code, _, err = cli(*base, "--sample", "20", "--resume")
    assert code == 0, err
    d = json.loads(gzip.decompress(path.read_bytes()))
    assert d["complete"] and d["n"] == 20 and d["resumed_classes"] >= 1
    by = {r["index"]: r for r in d["rows"]}
    assert all(by[r["index"]]["params"] == r["params"] for r in small["rows"] if r["index"] in by)
    code, _, err = cli(*base, "--sample", "20", "--resume", "--seed", "3")
    assert code == 2 and "cannot resume" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, fragment", [
    (["bench", "correlate", "--sample", "0", "--indicators", "params"], "positive"),
    (["bench", "correlate", "--indicators", "nope"], "unknown indicator 'nope'"),
    (["bench", "correlate", "--benchmark", "/nonexistent.csv"], "does not exist"),
    (["score", "1", "--indicators", "bogus"], "unknown indicator"),
])
def test_bench_bad_input(cli, monkeypatch, argv, fragment):
    monkeypatch.delenv("MICRONAS_NB201", raising=False)
    code, _, err = cli(*argv)
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_missing_benchmark_says_how(cli, monkeypatch):
    monkeypatch.delenv("MICRONAS_NB201", raising=False)
    code, _, err = cli("bench", "correlate", "--indicators", "params")
    assert code == 2 and "MICRONAS_NB201" in err and "--benchmark" in err


def test_malformed_benchmark(cli, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("index,arch\n0,x\n")
    code, _, err = cli("bench", "correlate", "--benchmark", str(p), "--indicators",
                       "params", "--no-cache")
    assert code == 2 and "lacks column" in err
    p.write_text("index,arch,cifar10_test,cifar100_test,imagenet16_120_test\n0,|x|,1,2,3\n")
    code, _, err = cli("bench", "correlate", "--benchmark", str(p), "--indicators",
                       "params", "--no-cache")
    assert code == 2 and "line 2" in err


def test_bad_cache_paths(cli, tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 1000)
    code, _, err = cli("score", "1", "--indicators", "params", "--cache", str(bad))
    assert code == 2 and "corrupted" in err
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = cli("score", "1", "--indicators", "params", "--cache",
                       str(f / "c.sqlite"))
    assert code == 2 and "cache" in err


def test_score_json(cli, tmp_path):
    code, out, _ = cli("score", "6111", "--indicators", "params,flops", "--json",
                       "--cache", str(tmp_path / "c.sqlite"))
    d = json.loads(out)
    assert code == 0 and d["indicators"]["params"]["value"] == 1070458
