"""Training speed, as a user sees it: --threads, images/s per epoch, a warning when an epoch
collapses against the first (other processes on the CPUs), and the help that says so."""

from __future__ import annotations

import json
import logging
import time

import pytest

torch = pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.training.cli import train as cli  # noqa: E402
from chexnet.training.data.phantom import write_phantom_dataset  # noqa: E402
from chexnet.training.fit import train as train_module  # noqa: E402
from chexnet.training.fit.config import default_workers  # noqa: E402


def test_threads_sets_torch_threads_for_the_run_and_the_loader_default(nih_sample, tmp_path,
                                                                       monkeypatch, caplog):
    real_epoch, seen = train_module.train_epoch, []

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", spy)
    before = torch.get_num_threads()
    run = tmp_path / "run"
    caplog.set_level(logging.INFO)
    assert cli.main([str(nih_sample), "--out", str(run), "--size", "32", "--epochs", "1",
                     "--threads", "1", "--cache-dir", str(tmp_path / "cache"),
                     "--max-steps-per-epoch", "2"]) == 0
    assert seen == [1]
    assert torch.get_num_threads() == before  # the process keeps its own setting
    info = json.loads((run / "run.json").read_text())
    assert info["config"]["threads"] == 1
    assert info["config"]["workers"] == 0  # --threads 1: the loader runs in the process
    assert info["threads"] == {"torch": 1, "loader_workers": 0, "set_by": "--threads"}
    assert info["distributed"] == {"world_size": 1, "backend": None, "devices": ["cpu"]}
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train_images_per_s"] == pytest.approx(32 / record["train_seconds"])
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1")]
    assert len(epoch_lines) == 1
    assert epoch_lines[0].endswith(f"{record['train_images_per_s']:.1f} images/s")
    mean = record["val_auroc"]["mean"]
    assert f"mean val AUROC {mean:.3f};" in epoch_lines[0]  # 3 decimals, not repr noise
    assert "with 1 torch thread(s) (--threads)" in caplog.text
    # --threads with --resume replaces the run's (the finished run trains no further epoch)
    assert cli.main(["--resume", str(run), "--threads", "2"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["threads"] == {"torch": 2, "loader_workers": 0, "set_by": "--threads"}
    assert [default_workers(n) for n in (None, 1, 2, 3, 16)] == [2, 0, 1, 2, 2]


def test_an_epoch_that_collapses_is_warned_about_with_threads(tmp_path, monkeypatch, caplog):
    """Epoch 2 is made 6x slower than epoch 1 (as other processes on the CPUs do): one warning
    line, naming the cause and --threads with the run to resume."""
    labels = write_phantom_dataset(tmp_path / "ph", 48, size=32, seed=2)
    real_epoch, took = train_module.train_epoch, []

    def contended(*args, **kwargs):
        t0 = time.perf_counter()
        out = real_epoch(*args, **kwargs)
        took.append(time.perf_counter() - t0)
        if len(took) == 2:
            time.sleep(5 * max(took[0], took[1]))
        return out

    monkeypatch.setattr(train_module, "train_epoch", contended)
    run = tmp_path / "run"
    caplog.set_level(logging.INFO)
    assert cli.main([str(labels), "--out", str(run), "--size", "32", "--epochs", "2",
                     "--workers", "0", "--threads", "2", "--cache-dir", str(tmp_path / "cache"),
                     "--max-steps-per-epoch", "2", "--batch-size", "8"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    text = warnings[0]
    assert "\n" not in text
    assert text.startswith("epoch 2 trained at ")
    assert "slower than epoch 1" in text
    assert "other processes are probably using the CPUs" in text
    assert f"chexnet-train --resume {run} --threads 1" in text
    rates = [json.loads(x)["train_images_per_s"]
             for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rates[1] < rates[0] / 3


def test_slow_epoch_warning_rule():
    warn = train_module.slow_epoch_warning
    assert warn(1, 10.0, 1, 10.0, 8) is None  # the first epoch is the reference
    assert warn(2, 3.4, 1, 10.0, 8) is None  # slower, but not a collapse
    text = warn(4, 1.0, 3, 10.0, 8, "runs/x")  # a resumed run: its own first epoch
    assert "10x slower than epoch 3" in text
    assert text.endswith("chexnet-train --resume runs/x --threads 4")
    assert warn(2, 1.0, 1, 10.0, 1).endswith("already uses 1 torch thread: stop the other "
                                             "processes.")


def test_help_examples_read_as_written(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    # the single-label example: the continuation line stays a line of its own
    assert "--min-per-class 380 \\\n      --normal-fraction 0.219\n" in text
    assert "--arch vgg16_bn" in text
    assert "--arch vgg16 " not in text
    assert "--threads N" in text
    assert ".chexnet-cache" not in text
