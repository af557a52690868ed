"""A real HTTP server on 127.0.0.1 (http.server in a thread) that serves files in the ways real
servers and networks misbehave: dropping the connection mid-body, ignoring Range, announcing a
size it never sends, stalling, redirecting. Tests of ``chexnet models get`` use it; nothing
leaves this machine."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: Behaviours (per path):
#: ok            200 / 206 as a good server does
#: drop-once     the first response sends half its body, then the connection is cut
#: ignore-range  always 200 with the whole file, whatever Range asks
#: short         announces 1000 bytes more than the file has (a broken mirror)
#: stall         sends the headers, then nothing until the test ends
#: wrong-range   answers a Range request with 206 from byte 0
#: redirect-http 302 to a plain-http address elsewhere
#: redirect-loopback 302 to plain http on this machine (127.0.0.1:9)
#: new-version   drop-once, then serves ``then`` (a new release, new ETag) at the same path;
#:               Range honoured only when If-Range is absent or names the current ETag
#: always-part   answers every GET, Range or not, with 206 and the file from byte 100
BEHAVIOURS = ("ok", "drop-once", "ignore-range", "short", "stall", "wrong-range",
              "redirect-http", "redirect-loopback", "always-part", "new-version")
_RANGE = re.compile(r"bytes=(\d+)-")


@dataclass
class Served:
    base: str  # http://127.0.0.1:PORT
    files: dict[str, bytes] = field(default_factory=dict)
    behaviour: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    dropped: set[str] = field(default_factory=set)
    then: dict[str, bytes] = field(default_factory=dict)  # new-version: the next release
    if_ranges: list[str | None] = field(default_factory=list)  # If-Range of each request
    release: threading.Event = field(default_factory=threading.Event)

    def add(self, path: str, data: bytes, behaviour: str = "ok", then: bytes = b"") -> str:
        assert behaviour in BEHAVIOURS
        self.files[path] = data
        self.then[path] = then
        self.behaviour[path] = behaviour
        return self.base + path


class _Handler(BaseHTTPRequestHandler):
    served: Served

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        s = self.served
        rng = self.headers.get("Range")
        s.requests.append((self.path, rng))
        data = s.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        how = s.behaviour[self.path]
        s.if_ranges.append(self.headers.get("If-Range"))
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        if how == "new-version" and self.path in s.dropped:
            data = s.then[self.path]
            etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
            if self.headers.get("If-Range") not in (None, etag):
                rng = None  # the file changed since: the whole new file (RFC 9110 13.1.5)
        if how in ("redirect-http", "redirect-loopback"):
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/model.pth.tar"
                             if how == "redirect-http" else "http://127.0.0.1:9/model.pth.tar")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        m = _RANGE.fullmatch(rng or "")
        start = int(m.group(1)) if m and how not in ("ignore-range",) else 0
        if m and start >= len(data) and how == "ok":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if how == "wrong-range":
            start = 0
        if how == "always-part":
            m, start = True, 100
        total = len(data) + (1000 if how == "short" else 0)  # "short": a size it never has
        if m and how not in ("ignore-range",):
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(total - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", etag)
        self.end_headers()
        if how == "stall":
            s.release.wait(30)
            return
        if how in ("drop-once", "new-version") and self.path not in s.dropped:
            s.dropped.add(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)
        if how == "short":
            self.wfile.flush()
            self.close_connection = True


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1 and localhost, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@contextmanager
def serving(tls: tuple[Path, Path] | None = None) -> Iterator[Served]:
    """A server on 127.0.0.1 (an ephemeral port) for the duration of the ``with``; HTTPS with
    ``tls`` = (certificate, key)."""
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    scheme = "http"
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, tls))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    handler.served = Served(f"{scheme}://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler.served
    finally:
        handler.served.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
