"""Training tests are hermetic: the user's chexnet folder (models, default model, the training
image cache) is a fresh temporary folder, never the real one."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def chexnet_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """``$CHEXNET_HOME`` for one test (child processes inherit it)."""
    home = tmp_path_factory.mktemp("chexnet-home")
    monkeypatch.setenv("CHEXNET_HOME", str(home))
    return home
