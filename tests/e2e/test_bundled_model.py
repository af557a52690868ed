"""The bundled default model: used when no --model is given, marked DEMO, its page current."""

from __future__ import annotations

from pathlib import Path

import pytest

from chexnet.inference import Engine
from chexnet.inference.cli.main import main
from chexnet.inference.package.card_markdown import card_markdown
from chexnet.inference.package.lookup import DEFAULT_MODEL_FILE, bundled_models_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def default_model() -> Path:
    path = bundled_models_dir() / DEFAULT_MODEL_FILE
    if not path.is_file():
        pytest.skip("no bundled default model in this checkout")
    return path


def test_default_model_is_a_small_demo_densenet(default_model):
    engine = Engine(default_model, device="cpu")
    card = engine.card
    assert card.demo is True
    assert card.arch == "densenet121"
    assert len(card.labels) == 14
    assert default_model.stat().st_size < 34 * 2**20  # 4 MiB of it: the OOD statistics
    assert "test_metrics" in card.extra
    assert card.extra["test_metrics"]["per_class"]
    assert "chexnet-train" in card.extra["train_command"]


def test_model_card_page_is_current(default_model):
    engine = Engine(default_model, device="cpu")
    page = (ROOT / "docs" / "model-card.md").read_text()
    assert page == card_markdown(engine.card, engine.sha256, default_model.name)


def test_predict_without_model_uses_the_default_and_says_demo(default_model, capsys):
    assert main(["predict", "--sample"]) == 0
    out = capsys.readouterr().out
    assert "DEMO MODEL" in out
    assert "CR PA CHEST" in out
    assert Engine(default_model).sha256 in out
