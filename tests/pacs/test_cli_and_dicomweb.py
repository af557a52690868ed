"""`chexnet pacs echo|find|get` as a user runs them (exit codes, JSON, files written), and the
same find + get over DICOMweb against Orthanc's DICOMweb plugin."""

from __future__ import annotations

import json

import pytest

from chexnet.inference.cli.main import main
from chexnet.inference.pacs.cache import CACHE_ENV, PacsCache
from chexnet.inference.pacs.client import echo, find_studies, retrieve_study
from chexnet.inference.pacs.node import PacsNode
from tests.pacs.archive import closed_port, content, running_archive


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "user-cache"))


def test_cli_echo_find_get(archive, tmp_path, capsys):
    assert main(["pacs", "echo", "--node", archive.address]) == 0
    assert "answers" in capsys.readouterr().out
    assert main(["pacs", "find", "--node", archive.address, "--date", "2024-01-01-2024-12-31",
                 "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert {m["accession"] for m in found} == {"ACC-1001", "ACC-1002"}
    assert main(["pacs", "find", "--node", archive.address, "--patient-id", "PAT-003"]) == 0
    table = capsys.readouterr().out
    assert "ACC-1003" in table
    assert archive.studies["ACC-1003"] in table
    study = archive.studies["ACC-1001"]
    out = tmp_path / "study"
    assert main(["pacs", "get", "--node", archive.address, "--study", study,
                 "--out", str(out)]) == 0
    assert sorted(map(content, out.glob("*.dcm"))) == sorted(
        map(content, archive.files[study]))
    assert "3 images written" in capsys.readouterr().out
    assert main(["pacs", "clear-cache"]) == 0
    assert PacsCache().studies() == []


def test_cli_errors_exit_with_words(capsys):
    assert main(["pacs", "echo", "--node", f"X@127.0.0.1:{closed_port()}"]) == 1
    assert "connection refused" in capsys.readouterr().err
    assert main(["pacs", "find", "--node", "not a node"]) == 2
    assert "expected AE@host:port" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["pacs", "find", "--help"])
    assert "examples:" in capsys.readouterr().out


@pytest.fixture(scope="module")
def web_archive(tmp_path_factory, rg1_j2kr):
    with running_archive(tmp_path_factory.mktemp("web"), rg1_j2kr, dicomweb=True) as archive:
        yield archive


def test_dicomweb_find_and_get(web_archive, tmp_path, rg1_j2kr):
    node = PacsNode.parse(web_archive.orthanc.url + "/dicom-web", timeout_s=20)
    assert echo(node) < 10
    found = find_studies(node, accession="ACC-1002")
    assert [m.study_uid for m in found] == [web_archive.studies["ACC-1002"]]
    assert (found[0].instances, found[0].modalities) == (2, ("CR",))
    assert {m.accession for m in find_studies(node, date_from="20230101",
                                              date_to="20231231")} == {"ACC-1003"}
    cache = PacsCache(tmp_path / "cache")
    for accession in ("ACC-1002", "RG1"):
        study = web_archive.studies[accession]
        files = retrieve_study(node, study, cache)
        assert sorted(map(content, files)) == sorted(map(content, web_archive.files[study]))
    assert content(retrieve_study(node, web_archive.studies["RG1"], cache)[0]) == content(
        rg1_j2kr)


def test_dicomweb_errors_in_words():
    node = PacsNode.parse(f"http://127.0.0.1:{closed_port()}/dicom-web", timeout_s=5)
    with pytest.raises(Exception, match="cannot connect") as caught:
        find_studies(node, patient_id="SECRET-ID-42")
    assert "SECRET" not in str(caught.value)
