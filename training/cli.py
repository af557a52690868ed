"""``chexnet-train`` entry point (the training recipe itself is its own issue, #3)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chexnet-train",
        description="Train CheXNet-style models and produce chexnet model packages. Not built "
                    "yet in this version: only the export code (chexnet.training.export) exists.")
    parser.parse_args(argv)
    print("chexnet-train: training is not available in this version yet.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
