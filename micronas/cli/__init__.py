"""The ``micronas`` command line: a thin layer over :mod:`micronas.api`.

``parser`` builds the argument parser, ``commands`` maps each command to one API call, and
``render`` prints results. User errors print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from micronas.errors import MicronasError


def main(argv: Sequence[str] | None = None) -> int:
    from micronas.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except MicronasError as e:
        sys.stderr.write(f"micronas: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("micronas: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


__all__ = ["main"]
