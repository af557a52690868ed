"""One Orthanc with the test archive for the whole PACS test module set (starting it costs
about a second; the tests only read from it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chexnet.inference.pacs.cache import PacsCache
from chexnet.inference.pacs.node import PacsNode
from tests.node.helpers import free_port
from tests.pacs.archive import Archive, running_archive


@pytest.fixture(scope="session")
def archive(tmp_path_factory, rg1_j2kr: Path):
    with running_archive(tmp_path_factory.mktemp("pacs"), rg1_j2kr,
                         move_port=free_port()) as archive:
        yield archive


@pytest.fixture
def node(archive: Archive) -> PacsNode:
    return PacsNode.parse(archive.address, timeout_s=20)


@pytest.fixture
def cache(tmp_path: Path) -> PacsCache:
    return PacsCache(tmp_path / "cache")
