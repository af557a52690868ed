"""TLS (--tls-cert/--tls-key): a client that trusts the node's certificate stores over TLS; a
plain (non-TLS) association to the TLS port gets nowhere. Skipped without openssl."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from tests.node.conftest import InProcessNode
from tests.node.helpers import make_study, store_files, wait_for_rows


@pytest.fixture
def cert(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, crt = tmp_path / "node.key", tmp_path / "node.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return crt, key


def test_store_over_tls(tmp_path, tiny_model, cert):
    crt, key = cert
    node = InProcessNode(tmp_path / "node", tiny_model, tls_cert=crt, tls_key=key)
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(crt))
        files = make_study(tmp_path / "in", 2)
        assert set(store_files(node.port, files, tls=client).values()) == {0x0000}
        assert len(wait_for_rows(node.out, 2)) == 2
        plain = make_study(tmp_path / "plain", 1)
        assert store_files(node.port, plain) == {plain[0]: None}
    finally:
        node.close()
