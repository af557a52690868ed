"""The download behind ``chexnet models get``, against a real HTTP server on 127.0.0.1 that
misbehaves the way networks do. Hashes are checked against hashlib on the served bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time

import pytest

from chexnet.inference.package.catalogue import (
    MIRROR_ENV,
    CatalogueError,
    catalogue_entry,
    download_url,
    load_catalogue,
)
from chexnet.inference.package.download import (
    DownloadBusyError,
    DownloadHTTPError,
    DownloadTimeoutError,
    HashMismatchError,
    IncompleteDownloadError,
    InsecureURLError,
    NetworkUnavailableError,
    SizeMismatchError,
    check_url,
    download,
    exclusive,
    part_path,
)
from tests.inference.package.http_server import self_signed_cert, serving

DATA = os.urandom(300_000)  # several reads' worth (the reader takes 64 KiB at a time)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    with serving() as s:
        yield s


def test_downloads_whole_file_with_its_sha256_and_progress(server, tmp_path):
    url = server.add("/m/model.pth.tar", DATA)
    seen = []
    got = download(url, tmp_path / "model.pth.tar", progress=lambda d, t: seen.append((d, t)))
    assert (tmp_path / "model.pth.tar").read_bytes() == DATA
    assert (got.sha256, got.size, got.resumed_from, got.restarted) == (SHA, len(DATA), 0, False)
    assert got.size_checked
    assert not part_path(tmp_path / "model.pth.tar").exists()
    assert seen[0] == (0, len(DATA))
    assert seen[-1] == (len(DATA), len(DATA))
    assert server.requests == [("/m/model.pth.tar", None)]


def test_interrupted_transfer_resumes_with_range(server, tmp_path):
    url = server.add("/f.pt", DATA, "drop-once")
    dest = tmp_path / "f.pt"
    with pytest.raises(IncompleteDownloadError, match="run the same command again to resume"):
        download(url, dest)
    kept = part_path(dest).stat().st_size
    assert 0 < kept < len(DATA)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == DATA[:kept]
    got = download(url, dest, sha256=SHA)  # the pin holds for the resumed whole
    assert server.requests[-1] == ("/f.pt", f"bytes={kept}-")
    assert got.resumed_from == kept
    assert not got.restarted
    assert dest.read_bytes() == DATA
    assert got.sha256 == SHA


def test_a_second_download_of_the_same_file_waits_for_nobody_and_touches_nothing(server,
                                                                                  tmp_path):
    """Two `models get` of one release would append to one .part: the second is refused at
    once (before any request), and the first's lock goes with it."""
    url = server.add("/busy.pt", DATA)
    dest = tmp_path / "busy.pt"
    part_path(dest).write_bytes(DATA[:1000])  # the first download's bytes so far
    with exclusive(dest), pytest.raises(DownloadBusyError, match="another chexnet process"):
        download(url, dest)
    assert server.requests == []
    assert part_path(dest).read_bytes() == DATA[:1000]
    assert download(url, dest, sha256=SHA).resumed_from == 1000  # lock released: it resumes
    assert dest.read_bytes() == DATA


def test_a_file_changed_on_the_server_is_never_spliced_onto_the_old_part(server, tmp_path):
    """Interrupted, then the release is replaced under the same URL (same size): the resume
    asks If-Range with the first response's ETag and gets the new file whole; without it the
    server sends the new file's tail after the old file's head (a file neither release is)."""
    new = os.urandom(len(DATA))
    url = server.add("/f.pt", DATA, "new-version", then=new)
    dest = tmp_path / "f.pt"
    with pytest.raises(IncompleteDownloadError):
        download(url, dest)
    got = download(url, dest)
    assert server.if_ranges[0] is None
    assert server.if_ranges[1] == f'"{SHA[:16]}"'  # the first response's ETag
    assert got.restarted
    assert dest.read_bytes() == new
    assert got.sha256 == hashlib.sha256(new).hexdigest()
    assert os.listdir(tmp_path) == ["f.pt"]  # no .part, no validator left behind


def test_server_that_ignores_range_restarts_cleanly(server, tmp_path):
    url = server.add("/f.pt", DATA, "ignore-range")
    dest = tmp_path / "f.pt"
    part_path(dest).write_bytes(b"stale bytes from another attempt" * 100)
    got = download(url, dest)
    assert server.requests[-1][1] == "bytes=3200-"  # it asked to resume ...
    assert got.restarted
    assert got.resumed_from == 0
    assert dest.read_bytes() == DATA
    assert got.sha256 == SHA


def test_range_answered_from_another_offset_restarts(server, tmp_path):
    url = server.add("/f.pt", DATA, "wrong-range")
    dest = tmp_path / "f.pt"
    part_path(dest).write_bytes(DATA[:1000])
    got = download(url, dest)
    assert [r[1] for r in server.requests] == ["bytes=1000-", None]
    assert got.restarted
    assert dest.read_bytes() == DATA


def test_a_part_never_asked_for_is_a_named_error_not_a_file(server, tmp_path):
    """A server that answers the whole-file GET with 206 from byte 100: not a crash on a
    closed response (ValueError), never a file; the same when a resume falls back to it."""
    url = server.add("/f.pt", DATA, "always-part")
    dest = tmp_path / "f.pt"
    for _ in range(2):  # from scratch, then with a partial file (resume, then from 0)
        with pytest.raises(SizeMismatchError, match=r"bytes 100-.*asked for the whole file"):
            download(url, dest)
        assert not dest.exists()
        part_path(dest).write_bytes(DATA[:50])
    assert [r[1] for r in server.requests] == [None, "bytes=50-", None]


def test_partial_file_longer_than_the_servers_restarts(server, tmp_path):
    url = server.add("/f.pt", DATA)
    dest = tmp_path / "f.pt"
    part_path(dest).write_bytes(os.urandom(len(DATA) + 10))  # 416 from the server
    got = download(url, dest)
    assert dest.read_bytes() == DATA
    assert got.sha256 == SHA


def test_wrong_size_is_never_accepted(server, tmp_path):
    url = server.add("/f.pt", DATA, "short")  # announces 1000 bytes it never sends
    dest = tmp_path / "f.pt"
    for _ in range(2):  # resuming cannot make it whole either
        with pytest.raises(IncompleteDownloadError, match=r"after 300,000 of 301,000 bytes"):
            download(url, dest)
        assert not dest.exists()


def test_wrong_pin_deletes_the_download(server, tmp_path):
    url = server.add("/f.pt", DATA)
    dest = tmp_path / "f.pt"
    wrong = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(HashMismatchError, match=f"sha256 {SHA} is not the pinned {wrong}"):
        download(url, dest, sha256=wrong)
    assert not dest.exists()
    assert not part_path(dest).exists()


def test_404_names_the_status_and_what_to_do(server, tmp_path):
    with pytest.raises(DownloadHTTPError, match=r"HTTP 404 Not Found; the release may have "
                                                r"moved.*--url"):
        download(server.base + "/gone.pt", tmp_path / "gone.pt")
    assert not (tmp_path / "gone.pt").exists()


def test_stalled_server_times_out_instead_of_hanging(server, tmp_path):
    url = server.add("/f.pt", DATA, "stall")
    t0 = time.monotonic()
    with pytest.raises(DownloadTimeoutError, match=r"127.0.0.1 sent nothing for 0.5 s"):
        download(url, tmp_path / "f.pt", timeout=0.5)
    assert time.monotonic() - t0 < 5


def test_unreachable_host_is_a_network_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkUnavailableError, match=r"cannot reach 127\.0\.0\.1.*offline"):
        download(f"http://127.0.0.1:{port}/f.pt", tmp_path / "f.pt", timeout=2)


@pytest.mark.parametrize("url", ["http://example.org/model.pth.tar", "ftp://127.0.0.1/x",
                                 "file:///etc/passwd", "https:///nohost"])
def test_only_https_or_loopback_http(url):
    with pytest.raises(InsecureURLError, match="only https:// URLs"):
        check_url(url)


def test_redirect_may_not_leave_https(server, tmp_path):
    url = server.add("/f.pt", DATA, "redirect-http")
    with pytest.raises(InsecureURLError, match=r"http://example\.invalid"):
        download(url, tmp_path / "f.pt")


def test_catalogue_entries_are_complete_and_https():
    entries = load_catalogue()
    assert {"chexnet-arnoweng", "reproduce-chexnet", "densenet121-res224-all",
            "densenet121-res224-nih", "densenet121-res224-pc", "densenet121-res224-chex",
            "densenet121-res224-rsna", "densenet121-res224-mimic_nb",
            "densenet121-res224-mimic_ch"} <= set(entries)
    for e in entries.values():
        check_url(e.url)
        assert e.url.rsplit("/", 1)[1] == e.file
        assert e.licence
        assert e.url_source
        assert e.auroc_where
        assert e.labels
        assert e.format in ("arnoweng", "reproduce-chexnet", "torchxrayvision")
        assert (e.format == "torchxrayvision") == (e.variant == e.name)
        assert e.auroc == "" or 0.5 < float(e.auroc) < 1


def test_mirror_and_url_override(monkeypatch):
    e = catalogue_entry("densenet121-res224-nih")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert download_url(e) == e.url
    monkeypatch.setenv(MIRROR_ENV, "https://mirror.hospital.example/chexnet/")
    assert download_url(e) == ("https://mirror.hospital.example/chexnet/densenet121-res224-nih/"
                               + e.file)
    assert download_url(e, "https://elsewhere.example/x.pt") == "https://elsewhere.example/x.pt"
    with pytest.raises(CatalogueError, match="'nope' is not in the model catalogue; known: "
                                             "chexnet-arnoweng"):
        catalogue_entry("nope")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_verifies_certificates_and_honours_ssl_cert_file(tmp_path, monkeypatch):
    cert, key = self_signed_cert(tmp_path)
    with serving(tls=(cert, key)) as server:
        url = server.add("/f.pt", DATA)
        assert url.startswith("https://127.0.0.1:")
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(NetworkUnavailableError, match=r"certificate of 127\.0\.0\.1 could not "
                                                          r"be verified.*SSL_CERT_FILE"):
            download(url, tmp_path / "f.pt")
        assert not (tmp_path / "f.pt").exists()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # a hospital's own CA, trusted
        got = download(url, tmp_path / "f.pt")
    assert got.sha256 == SHA


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_download_may_not_be_redirected_to_plain_http_even_here(tmp_path, monkeypatch):
    """Plain http is for a URL given to this machine, never for a redirect off HTTPS (a
    mirror's redirect to http://127.0.0.1 would reach this machine's unencrypted services)."""
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with serving(tls=(cert, key)) as server:
        url = server.add("/f.pt", DATA, "redirect-loopback")
        with pytest.raises(InsecureURLError, match=r"may not continue over plain http"):
            download(url, tmp_path / "f.pt", timeout=3)
    assert not (tmp_path / "f.pt").exists()
