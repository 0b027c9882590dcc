# SPDX-License-Identifier: GPL-2.0-only
"""``migtrace`` entry point: one module per subcommand under ``analysis.cli``.

A subcommand module defines ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``.  Exit codes follow cli.md: 0 decoded, 1 decoded
with input errors, 2 usage/unreadable/unknown format, 3 compare regressed.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import sys
from typing import Sequence

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("decode", "flows", "extract", "summary", "report", "plot",
               "simulate", "corpus", "compare", "export", "record", "watch")

EXIT_OK, EXIT_INPUT_ERRORS, EXIT_USAGE, EXIT_REGRESSED = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="migtrace", description=(
        "Dissect and analyse live migration of virtio-net VFs through vfio-virtio: "
        "pcap/pcapng, raw QEMU streams, trace.dat and text traces, admin captures."))
    parser.add_argument("--version", action="version", version="migtrace " + _version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"analysis.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"analysis.cli.{name}":
                continue  # subcommand not part of this build
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--progress", action="store_true",
                       help="show progress on stderr even when it is not a terminal")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


@functools.lru_cache(maxsize=1)
def _parser() -> argparse.ArgumentParser:
    # one parser per process: building it is most of a small file's run time (argparse looks up
    # translations for every argument), and parse_args leaves it unchanged, so main() called from
    # a notebook or a test loop pays that once
    return build_parser()


def _version() -> str:
    from analysis import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._run(args))
    except BrokenPipeError:  # `migtrace decode x | head`
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
