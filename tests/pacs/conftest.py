"""One Orthanc with the test archive for the whole PACS test module set (starting it costs
about a second; the tests only read from it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chexnet.inference.pacs.cache import PacsCache
from chexnet.inference.pacs.node import PacsNode
from tests.node.helpers import free_port
from tests.pacs.archive import Archive, populate
from tests.pacs.orthanc import Orthanc


@pytest.fixture(scope="session")
def archive(tmp_path_factory, rg1_j2kr: Path):
    root = tmp_path_factory.mktemp("pacs")
    move_port = free_port()
    orthanc = Orthanc(root / "orthanc", move_port)
    try:
        yield populate(orthanc, root / "sources", rg1_j2kr, move_port)
    finally:
        orthanc.stop()


@pytest.fixture
def node(archive: Archive) -> PacsNode:
    return PacsNode.parse(archive.address, timeout_s=20)


@pytest.fixture
def cache(tmp_path: Path) -> PacsCache:
    return PacsCache(tmp_path / "cache")
