import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MICRONAS_SHARED_DATA", REPO.parent / "shared" / "data"))


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
