"""Helpers the labels-from-reports CLI tests share."""

from __future__ import annotations

import csv
from pathlib import Path

from chexnet.inference.cli.main import main


def run(capsys, *args):
    """``chexnet labels-from-reports ARGS``: (exit code, stdout, stderr)."""
    code = main(["labels-from-reports", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def train_smoke(capsys, labels_csv: Path, folder: Path, *options: str) -> dict:
    """A two-step chexnet-train run at 32 px on ``labels_csv``; returns its run.json."""
    import json

    from chexnet.training.cli import train as train_cli

    code = train_cli.main([str(labels_csv), *options, "--out", str(folder / "run"), "--size",
                           "32", "--epochs", "1", "--workers", "0", "--cache-dir",
                           str(folder / "cache"), "--max-steps-per-epoch", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads((folder / "run" / "run.json").read_text())
