import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MICRONAS_SHARED_DATA", REPO.parent / "shared" / "data"))


KINDS = ("unit", "integration", "system")


@pytest.fixture(autouse=True, scope="session")
def _own_config_folder(tmp_path_factory):
    """Tests (and the commands they start) see no device profiles of the developer's own:
    $MICRONAS_CONFIG points at an empty folder for the whole session."""
    old = os.environ.get("MICRONAS_CONFIG")
    os.environ["MICRONAS_CONFIG"] = str(tmp_path_factory.mktemp("config"))
    from micronas.hardware.device import DEVICES

    DEVICES.reload()
    yield
    if old is None:
        os.environ.pop("MICRONAS_CONFIG", None)
    else:
        os.environ["MICRONAS_CONFIG"] = old
    DEVICES.reload()


def pytest_collection_modifyitems(config, items):
    """Every test is of exactly one kind (``pytestmark = pytest.mark.unit`` and so on), so
    ``pytest -m unit`` and friends select the whole suite between them."""
    bad = [f"{it.nodeid}: {kinds or 'no kind'}" for it in items
           if len(kinds := [k for k in KINDS if it.get_closest_marker(k)]) != 1]
    if bad:
        raise pytest.UsageError("tests need exactly one of the markers "
                                f"{', '.join(KINDS)}:\n" + "\n".join(bad))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip (the project must run without it)."""
    if not (SHARED / "nb201" / "nb201_accuracy.csv").is_file():
        pytest.skip(f"reference data not found at {SHARED} (set MICRONAS_SHARED_DATA)")
    return SHARED


@pytest.fixture()
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr); argparse exits count."""
    from micronas.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture()
def fake_table(tmp_path):
    """A table in the shared format whose 'accuracy' is a known function of the arch."""
    from micronas.spaces.nb201 import NB201Space

    p = tmp_path / "nb201.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "arch", "cifar10_test", "cifar10_valid", "cifar100_test",
                    "imagenet16_120_test", "params_m"])
        for i, a in enumerate(NB201Space().enumerate()):
            acc = 10 * a.ops.count("nor_conv_3x3") + 3 * a.ops.count("nor_conv_1x1") + i * 1e-6
            w.writerow([i, str(a), acc, acc, acc, acc, 0.1])
    return p
