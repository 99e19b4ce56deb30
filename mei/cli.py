"""The ``mei`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mei", description="Most exciting inputs for PyTorch models of neurons")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the engine demo and write figures")
    demo.add_argument("--out", default="mei_output", help="output folder (default: mei_output)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .engine_demo import run

        grid, losses = run(args.out)
        print(f"MEI grid:   {grid}\nloss curve: {losses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
