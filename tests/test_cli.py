import json
import subprocess
import sys

import pytest

from micronas.cli import main

pytestmark = pytest.mark.system

KEYS = {"arch", "index", "device", "macs", "params", "flash_bytes", "peak_sram_bytes",
        "latency_ms", "fits", "layers", "nb201_flops", "nb201_params"}


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cost_json(capsys):
    code, out, err = run(capsys, "cost", "6111", "--device", "stm32f746", "--json")
    assert code == 0 and not err
    d = json.loads(out)
    assert KEYS <= set(d)
    assert d["index"] == 6111 and d["device"] == "stm32f746"
    assert d["macs"] == sum(la["macs"] for la in d["layers"])
    assert d["nb201_params"] == pytest.approx(1.073466, abs=1e-6)


def test_cost_human_and_arch_and_devices(capsys):
    code, out, _ = run(capsys, "cost", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|"
                       "skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "--dataset", "cifar100")
    assert code == 0 and "index 6111" in out and "peak SRAM" in out
    code, out, _ = run(capsys, "arch", "6111")
    assert code == 0 and "nor_conv_3x3~0" in out and "iso key" in out
    code, out, _ = run(capsys, "devices")
    assert code == 0 and "stm32f746" in out and "rp2040" in out


@pytest.mark.parametrize("argv, fragment", [
    (["cost", "|nor_conv_3x3~0|+|bad|"], "malformed NB201 string"),
    (["cost", "20000"], "out of range"),
    (["cost", "1", "--device", "esp32"], "unknown device"),
    (["cost", "1", "--dataset", "mnist"], "unknown task"),
    (["arch", "|x~0|+|x~0|x~1|+|x~0|x~1|x~2|"], "unknown op 'x'"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_one_line_exit_2(capsys, argv, fragment):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_malformed_device_file_via_cli(tmp_path, capsys):
    p = tmp_path / "d.toml"
    p.write_text('name = "d"\ncore = "cortex-m4"\n')
    code, _, err = run(capsys, "cost", "1", "--device", str(p))
    assert code == 2 and "missing required key 'clock_mhz'" in err


def test_console_script_subprocess():
    out = subprocess.run([sys.executable, "-m", "micronas", "cost", "1", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["index"] == 1


def test_search_of_a_custom_task_with_micronas_nb201_set(cli, fake_table, monkeypatch):
    """$MICRONAS_NB201 gives accuracies where NB201 has them; a task it has none for
    searches without them (only an explicit --benchmark makes that an error)."""
    monkeypatch.setenv("MICRONAS_NB201", str(fake_table))
    argv = ["search", "--space", "nb201", "--strategy", "random", "--evaluations", "2",
            "--indicators", "params", "--input", "16x16x3", "--classes", "10", "--no-cache",
            "--quiet"]
    code, out, err = cli(*argv)
    assert code == 0, err
    assert "accuracy" not in out
    code, out, err = cli(*argv, "--benchmark", str(fake_table))
    assert code == 2 and "no ground truth" in err


def test_every_flag_has_help():
    """Every option of every command says what it does in --help."""
    import argparse

    from micronas.cli.parser import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, [*path, name])
            elif a.option_strings and a.dest != "help" and not a.help:
                missing.append(f"{' '.join(path)} {a.option_strings[0]}")

    walk(build_parser(), ["micronas"])
    assert not missing, missing
