"""``--batch-size auto`` in ``chexnet predict`` and ``chexnet screen``, as a user types it."""

from __future__ import annotations

import json

import pytest

from chexnet.inference.cli.main import main
from chexnet.inference.scoring.batch_size import activation_bytes, largest_batch, memory_budget


def test_predict_batch_auto_reports_provider_precision_and_batch(tiny_model, nih_png, capsys):
    code = main(["predict", str(nih_png), "--json", "--model", str(tiny_model),
                 "--device", "cpu", "--batch-size", "auto"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["model"]["provider"] == "CPUExecutionProvider"
    assert doc["model"]["precision"] == "fp32"
    budget, fixed = memory_budget(False, tiny_model.stat().st_size)
    # independent of the engine: the budget's largest power of two (free memory moves a little
    # between the two reads, but not across a power of two at these sizes)
    assert doc["model"]["batch_size"] == largest_batch(activation_bytes(tiny_model), fixed,
                                                       budget)
    assert doc["results"][0]["status"] != "error"


def test_screen_batch_auto_and_bad_values(tiny_model, nih_png, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / nih_png.name).symlink_to(nih_png)
    code = main(["screen", str(src), "--out", str(tmp_path / "out"), "--model", str(tiny_model),
                 "--batch-size", "auto", "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    first = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[0])
    assert first["options"]["batch_size"] >= 1
    with pytest.raises(SystemExit):
        main(["screen", str(src), "--out", str(tmp_path / "o2"), "--batch-size", "many"])
    assert "positive integer or 'auto'" in capsys.readouterr().err
