"""Searching and retrieving from a real Orthanc by C-FIND and C-GET (and C-MOVE): the right
studies for each key, every instance back with the same content (JPEG 2000 included, stored as
sent), a cache that is hashed, marked complete last and used again without the network."""

from __future__ import annotations

import json
import os

import pytest

from chexnet.inference.pacs.cache import MARKER, PacsCache, uid_hash
from chexnet.inference.pacs.client import echo, find_studies, retrieve_study
from chexnet.inference.pacs.node import PacsNode
from tests.pacs.archive import content


def accessions(found) -> set[str]:
    return {m.accession for m in found}


def test_echo_answers(node):
    assert echo(node) < 10


def test_find_by_patient_id_accession_and_date(node, archive):
    assert accessions(find_studies(node, patient_id="PAT-001")) == {"ACC-1001"}
    by_accession = find_studies(node, accession="ACC-1002")
    assert accessions(by_accession) == {"ACC-1002"}
    match = by_accession[0]
    assert match.study_uid == archive.studies["ACC-1002"]
    assert (match.date, match.modalities, match.instances) == ("20240210", ("CR",), 2)
    assert match.description == "CHEST PA AND LAT"
    assert accessions(find_studies(node, date_from="20240101", date_to="20241231")) == {
        "ACC-1001", "ACC-1002"}
    assert accessions(find_studies(node, date_from="20230101", date_to="20231231")) == {
        "ACC-1003"}
    assert accessions(find_studies(node, patient_name="Gamma*")) == {"ACC-1003"}
    assert find_studies(node, patient_id="NOBODY") == []


def test_find_defaults_to_radiographs_and_keeps_names_out_of_repr(node, archive):
    found = find_studies(node)
    assert {m.study_uid for m in found} == set(archive.files)  # all CR, RG1 included
    assert [m.date for m in found] == sorted((m.date for m in found), reverse=True)
    assert find_studies(node, modalities=("CT",)) == []
    shown = repr(found)
    assert "PAT-00" not in shown
    assert "Alpha" not in shown
    assert "ACC-" not in shown


@pytest.mark.parametrize("accession", ["ACC-1001", "RG1"])
def test_get_returns_every_instance_with_the_same_content(node, archive, cache, accession):
    study = archive.studies[accession]
    seen = []
    files = retrieve_study(node, study, cache, progress=lambda d, n: seen.append((d, n)))
    sources = archive.files[study]
    assert sorted(map(content, files)) == sorted(map(content, sources))
    assert seen[-1] == (len(sources), len(sources))
    folder = cache.study_dir(study)
    assert folder.name == uid_hash(study)
    assert study not in str(files)
    assert {f.name for f in files} == set(json.loads((folder / MARKER).read_text())["files"])


def test_jpeg_2000_comes_back_as_stored(node, archive, cache, rg1_j2kr):
    [got] = retrieve_study(node, archive.studies["RG1"], cache)
    assert content(got) == content(rg1_j2kr)
    assert content(got)[1] == "1.2.840.10008.1.2.4.90"  # JPEG 2000 lossless, not transcoded


def test_a_complete_study_is_read_from_the_cache(node, archive, cache):
    study = archive.studies["ACC-1003"]
    first = retrieve_study(node, study, cache)
    offline = PacsNode.parse("NOWHERE@127.0.0.1:9", timeout_s=1)
    assert retrieve_study(offline, study, cache) == first


def test_c_move_to_our_own_storage_scp(archive, cache):
    node = PacsNode.parse(archive.address, "CHEXNET", timeout_s=20,
                          move_port=archive.move_port)
    study = archive.studies["ACC-1002"]
    files = retrieve_study(node, study, cache)
    assert sorted(map(content, files)) == sorted(map(content, archive.files[study]))


def test_the_cache_evicts_least_recently_used_studies(tmp_path):
    cache = PacsCache(tmp_path / "c", max_bytes=2500)
    for k, study in enumerate(("1.1", "1.2", "1.3")):
        path = cache.store(study, f"{study}.1", b"x" * 1000)
        cache.mark_complete(study, [path], "all")
        os.utime(cache.study_dir(study) / MARKER, (1000 + k, 1000 + k))
    assert cache.complete("1.1") is not None  # used now: the most recent
    cache.evict(keep="1.3")
    assert [d.name for d in cache.studies()] == sorted(
        [uid_hash("1.1"), uid_hash("1.3")], key=lambda n: n != uid_hash("1.3"))
    assert cache.clear() > 0
    assert cache.studies() == []
