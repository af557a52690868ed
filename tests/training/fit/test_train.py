"""chexnet-train end to end on real data (short), resume, interrupt, and bad input."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.training.cli import train as cli  # noqa: E402
from chexnet.training.fit.run_folder import load_checkpoint  # noqa: E402


def _train(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_one_short_epoch_on_the_nih_sample(nih_sample, tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = _train([str(nih_sample), "--out", str(run), "--size", "64", "--epochs", "1",
                             "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
                             "--max-steps-per-epoch", "3"], capsys)
    assert code == 0, err
    assert "Export with: chexnet export" in out
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished"
    assert info["data"]["train"]["images"] > 250
    assert info["config"]["arch"] == "densenet121"
    assert info["config"]["lr"] == 1e-3
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(log) == 1
    assert set(log[0]["val_auroc"]) >= {"Effusion", "mean"}
    state = load_checkpoint(run / "best.pt")  # weights_only=True inside
    assert state["labels"][0] == "Atelectasis"
    assert len(state["labels"]) == 14
    val = (run / "splits" / "val_list.txt").read_text().split()
    test = (run / "splits" / "test_list.txt").read_text().split()
    assert val
    assert test
    assert not set(val) & set(test)


def test_interrupt_leaves_a_resumable_run(nih_sample, tmp_path, capsys, monkeypatch):
    from chexnet.training.fit import train as train_module

    run = tmp_path / "run"
    real_epoch = train_module.train_epoch
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", flaky)
    common = ["--size", "32", "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
              "--max-steps-per-epoch", "2"]
    code, _, err = _train([str(nih_sample), "--out", str(run), "--epochs", "3", *common],
                          capsys)
    assert code == 130
    assert "--resume" in err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(train_module, "train_epoch", real_epoch)
    info = json.loads((run / "run.json").read_text())
    assert info["last_epoch"] == 1  # epoch 2 was interrupted, not finished
    code, _, err = _train(["--resume", str(run)], capsys)
    assert code == 0, err
    resumed = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    # the same run without the interruption: identical losses (state and randomness restored)
    straight = tmp_path / "straight"
    code, _, err = _train([str(nih_sample), "--out", str(straight), "--epochs", "3", *common],
                          capsys)
    assert code == 0, err
    reference = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(resumed, reference, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
        assert a["lr"] == b["lr"]


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    code, _, err = _train([str(tmp_path / "nowhere")], capsys)
    assert code == 2
    assert "no such folder or file" in err
    assert "Traceback" not in err
    code, _, err = _train([str(tmp_path), "--init", "imagenet:" + str(tmp_path / "w.pth")],
                          capsys)
    assert code == 2
    assert "never downloads" in err
    assert "w.pth" in err


def test_imagenet_init_loads_torchvision_state_dicts_with_old_densenet_keys(tmp_path):
    import torchvision

    from chexnet.training.fit.cam_model import InitWeightsError, build_model

    ref = torchvision.models.densenet121(weights=None)
    old_style = {k.replace("norm1", "norm.1").replace("conv2", "conv.2"): v
                 for k, v in ref.state_dict().items()}
    torch.save(old_style, tmp_path / "dn.pth")
    model = build_model("densenet121", 3, tmp_path / "dn.pth")
    key = "denseblock1.denselayer1.norm1.weight"
    assert torch.equal(model.features.state_dict()[key], ref.features.state_dict()[key])
    torch.save(torchvision.models.resnet101(weights=None).state_dict(), tmp_path / "rn.pth")
    with pytest.raises(InitWeightsError, match="not a torchvision densenet121"):
        build_model("densenet121", 3, tmp_path / "rn.pth")


def test_export_refuses_a_checkpoint_of_another_architecture(nih_sample, tmp_path, capsys):
    from chexnet.inference.cli.main import main as chexnet

    run = tmp_path / "run"
    code, _, err = _train([str(nih_sample), "--out", str(run), "--size", "32", "--epochs", "1",
                           "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
                           "--max-steps-per-epoch", "1"], capsys)
    assert code == 0, err
    state = load_checkpoint(run / "best.pt")
    state["arch"] = "resnet101"
    torch.save(state, run / "best.pt")
    assert chexnet(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "do not fit a resnet101" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_fine_tuning_starts_from_another_runs_best_weights(nih_sample, tmp_path, capsys,
                                                          caplog):
    """``--init run:RUN_DIR`` (e.g. a site's reader feedback): the run's weights and head when
    the labels are the same, its backbone and a new head when they differ; refused by name
    for another backbone or a folder without best.pt."""
    from chexnet.training.fit.cam_model import build_model
    from chexnet.training.fit.run_folder import init_from_run

    base = tmp_path / "base"
    common = ["--size", "64", "--epochs", "1", "--workers", "0", "--cache-dir",
              str(tmp_path / "cache"), "--max-steps-per-epoch", "2"]
    assert _train([str(nih_sample), "--out", str(base), *common], capsys)[0] == 0
    best = load_checkpoint(base / "best.pt")
    labels = tuple(best["labels"])

    same = build_model("densenet121", len(labels))
    assert "head" in init_from_run(same, base, "densenet121", labels)
    for key, value in same.state_dict().items():
        assert torch.equal(value, best["model"][key]), key
    other = build_model("densenet121", 2)
    said = init_from_run(other, base, "densenet121", ("Effusion", "Mass"))
    assert "new head" in said
    body = {k: v for k, v in other.state_dict().items() if not k.startswith("classifier.")}
    assert body
    assert all(torch.equal(v, best["model"][k]) for k, v in body.items())
    with pytest.raises(ValueError, match="pass --arch densenet121"):
        init_from_run(same, base, "resnet101", labels)

    caplog.set_level("INFO")
    code, _, err = _train([str(nih_sample), "--out", str(tmp_path / "tuned"), "--init",
                           f"run:{base}", "--lr", "1e-4", *common], capsys)
    assert code == 0, err
    assert "started from the run's weights and head" in caplog.text
    code, _, err = _train([str(nih_sample), "--out", str(tmp_path / "x"), "--init",
                           f"run:{tmp_path / 'nowhere'}", *common], capsys)
    assert code != 0
    assert "no best.pt there" in err
