"""One file over HTTPS into a folder: resumable, size-checked, hashed (``chexnet models get``).

Standard library only (urllib, hashlib): the download is one GET with an optional Range header,
which needs none of a heavier client's features, and the inference room keeps its dependencies
few (docs/decisions.md, "Downloading released weights"). What it guarantees:

- HTTPS only, certificates verified (the system store; ``SSL_CERT_FILE`` for a hospital's own
  CA); plain ``http://`` only to this machine (127.0.0.1, ::1, localhost), and a redirect may
  not leave HTTPS. Proxies come from ``https_proxy`` / ``HTTPS_PROXY`` as urllib reads them.
- Bytes go to ``<file>.part``; an interrupted transfer keeps it and the next call asks for the
  rest (``Range: bytes=N-``). A server that answers a Range request with the whole file (200),
  or with a range that does not start at N, is written from the start again. The first
  response's validator (a strong ETag, else Last-Modified) is kept beside the ``.part``, and a
  resume asks ``If-Range`` with it: a file changed on the server since then (a new release under
  the same URL) is sent whole, never spliced onto the old file's first bytes.
- The file gets its final name only when its size equals what the server announced
  (Content-Length, or the total of Content-Range) and, with ``sha256=``, its hash is the pinned
  one; a mismatching hash deletes the download.
- ``timeout`` bounds the connection and every read: a server that stops sending raises
  :class:`DownloadTimeoutError` instead of hanging.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chexnet.inference.errors import ChexnetError
from chexnet.inference.package.hashing import sha256_file

CHUNK = 1 << 16
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
DEFAULT_TIMEOUT_S = 30.0
Progress = Callable[[int, int | None], None]


class DownloadError(ChexnetError):
    """A download that did not complete; the message says what happened and what to do."""


class InsecureURLError(DownloadError):
    """Not HTTPS (and not this machine)."""


class DownloadHTTPError(DownloadError):
    """The server answered with an HTTP error (404, 403, 500...)."""


class NetworkUnavailableError(DownloadError):
    """The host could not be reached (no network, no DNS, refused, proxy down)."""


class DownloadTimeoutError(DownloadError):
    """The server accepted nothing, or sent nothing, for ``timeout`` seconds."""


class IncompleteDownloadError(DownloadError):
    """The transfer stopped before the announced size; the partial file is kept for resuming."""


class SizeMismatchError(DownloadError):
    """The server sent more than it announced, or a range that does not add up."""


class HashMismatchError(DownloadError):
    """The downloaded file's sha256 is not the pinned one; the file was deleted."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    resumed_from: int  # bytes already on disk that this transfer continued (0: from the start)
    restarted: bool  # a partial file existed but the server sent the whole file again
    size_checked: bool  # the server announced a size and the file has it


def check_url(url: str) -> None:
    """Refuse anything but HTTPS, except plain HTTP to this machine (tests, local mirrors)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise InsecureURLError(f"refusing to download {url!r}: only https:// URLs are fetched "
                           "(plain http:// only from this machine: 127.0.0.1, ::1, localhost)")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl)
        if urlsplit(req.full_url).scheme == "https" and urlsplit(newurl).scheme != "https":
            raise InsecureURLError(f"refusing the redirect from {req.full_url!r} to {newurl!r}: "
                                   "a download over HTTPS may not continue over plain http")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def validator_path(dest: Path) -> Path:
    """Where the ``.part``'s validator (ETag or Last-Modified of its first response) is kept."""
    return dest.with_name(dest.name + ".part.validator")


def _validator(resp) -> str:
    etag = resp.headers.get("ETag", "").strip()
    return etag if etag and not etag.startswith("W/") else \
        resp.headers.get("Last-Modified", "").strip()


class DownloadBusyError(DownloadError):
    """Another process is downloading into the same file."""


@contextlib.contextmanager
def exclusive(dest: Path):
    """Lock ``dest``'s folder (one per release) for the download: a second ``chexnet models
    get`` of the same release fails at once instead of appending to the same ``.part``. POSIX
    ``flock`` on the folder itself, so no lock file is left behind, and the kernel releases it
    when the process dies (a killed download never leaves a stale lock). Where ``fcntl`` does
    not exist (Windows) there is no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadBusyError(f"{dest.name} is being downloaded by another chexnet "
                                    "process; wait for it to finish, then run this again"
                                    ) from None
        yield
    finally:
        os.close(fd)


def download(url: str, dest: str | Path, *, timeout: float = DEFAULT_TIMEOUT_S,
             sha256: str | None = None, progress: Progress | None = None) -> Downloaded:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part`` if there is one); see the module."""
    check_url(url)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(dest):
        return _download(url, dest, timeout, sha256, progress)


def _download(url: str, dest: Path, timeout: float, sha256: str | None,
              progress: Progress | None) -> Downloaded:
    part = part_path(dest)
    offset = part.stat().st_size if part.is_file() else 0
    check = validator_path(dest)
    if_range = check.read_text().strip() if offset and check.is_file() else ""
    host = urlsplit(url).hostname
    try:
        resp, start, total = _open(url, offset, timeout, if_range)
        if start == 0:
            check.write_text(_validator(resp))
        with resp:
            _receive(resp, part, start, total, progress)
    except TimeoutError:
        raise DownloadTimeoutError(
            f"{host} sent nothing for {timeout:g} s ({url}); the network or the server is too "
            "slow: try again later (what arrived is kept and the next run resumes), or raise "
            "--timeout") from None
    except (http.client.HTTPException, ConnectionError, ssl.SSLError) as err:
        got = part.stat().st_size if part.is_file() else 0
        raise IncompleteDownloadError(
            f"the transfer from {host} broke off after {got:,} bytes ({type(err).__name__}); "
            "run the same command again to resume") from None
    size = part.stat().st_size
    if total is not None and size != total:
        if size > total:
            part.unlink()
            check.unlink(missing_ok=True)
            raise SizeMismatchError(f"{url}: received {size:,} bytes but the server announced "
                                    f"{total:,}; the download was deleted: try again, or use "
                                    "another mirror")
        raise IncompleteDownloadError(
            f"{url}: the server closed the transfer after {size:,} of {total:,} bytes; run the "
            "same command again to resume")
    digest = sha256_file(part)
    if sha256 and digest != sha256.lower():
        part.unlink()
        check.unlink(missing_ok=True)
        raise HashMismatchError(f"{url}: sha256 {digest} is not the pinned {sha256.lower()}; "
                                "the download was deleted (a different or damaged file: check "
                                "the URL, the mirror and --sha256)")
    os.replace(part, dest)
    check.unlink(missing_ok=True)
    return Downloaded(dest, size, digest, start, offset > 0 and start == 0, total is not None)


def _open(url: str, offset: int, timeout: float, if_range: str = ""):
    """(response, first byte it carries, total size or None) for GET ``url`` from ``offset``
    (``If-Range: if_range`` when given). A server that cannot or will not continue from
    ``offset`` (416, 200, a 206 for another range) gets the whole file: from byte 0."""
    resp = _get(url, offset, timeout, if_range)
    if resp is None:  # 416: the partial file does not fit the server's file (any more)
        resp = _get(url, 0, timeout)
    length = resp.headers.get("Content-Length")
    if resp.status != 206:
        return resp, 0, int(length) if length and length.isdigit() else None
    sent = resp.headers.get("Content-Range", "").strip()
    m = _CONTENT_RANGE.fullmatch(sent)
    if m and int(m.group(1)) == offset:
        return resp, offset, None if m.group(3) == "*" else int(m.group(3))
    resp.close()
    if offset:
        return _open(url, 0, timeout)
    raise SizeMismatchError(f"{url}: the server sent a part of the file ({sent[:60]!r}) when "
                            "asked for the whole file; try again later, or use another mirror")


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _get(url: str, offset: int, timeout: float, if_range: str = ""):
    """The response to GET ``url`` (from byte ``offset``), or None for 416 to a Range request."""
    headers = {"User-Agent": "chexnet-models-get", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if if_range:
            headers["If-Range"] = if_range
    opener = urllib.request.build_opener(_SafeRedirects)
    host = urlsplit(url).hostname
    try:
        return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            return None
        raise DownloadHTTPError(f"{url}: the server answered HTTP {err.code} {err.reason}; "
                                "the release may have moved: check its source page (`chexnet "
                                "models get --list`), or give the file's new address with "
                                "--url") from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, TimeoutError | socket.timeout):
            raise TimeoutError from None
        if isinstance(reason, ssl.SSLError):
            raise NetworkUnavailableError(
                f"the HTTPS certificate of {host} could not be verified ({reason}); behind a "
                "proxy that re-signs HTTPS, point SSL_CERT_FILE at its CA bundle") from None
        raise NetworkUnavailableError(f"cannot reach {host} ({reason}); this machine may "
                                      "be offline or behind a proxy (set https_proxy)") from None


def _receive(resp, part: Path, start: int, total: int | None,
             progress: Progress | None) -> None:
    done = start
    with open(part, "r+b" if start else "wb") as out:
        out.truncate(start)
        out.seek(start)
        if progress:
            progress(done, total)
        while block := resp.read(CHUNK):
            out.write(block)
            done += len(block)
            if progress:
                progress(done, total)
        out.flush()
        os.fsync(out.fileno())
