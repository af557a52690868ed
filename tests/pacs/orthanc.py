"""A real Orthanc PACS for tests: its own config (free loopback ports, temporary storage, chexnet
declared as a modality), started as a subprocess, stopped by its PID. Skipped when Orthanc is
not installed (CI installs the Debian package). ``dicomweb=True`` loads Orthanc's DICOMweb plugin
(served at ``url + "/dicom-web"``; skipped when the plugin is absent); ``options`` override or
add Orthanc options (e.g. to make it refuse unknown callers); ``env`` adds environment
variables (``TCP_NODELAY=1``: DCMTK then disables Nagle's algorithm)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.node.helpers import free_port

ORTHANC_AET = "ORTHANC"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


class Orthanc:
    def __init__(self, root: Path, chexnet_port: int, chexnet_aet: str = "CHEXNET", *,
                 dicomweb: bool = False, options: dict | None = None,
                 env: dict | None = None) -> None:
        binary = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin")
        if binary is None:
            pytest.skip("Orthanc is not installed (apt-get install orthanc)")
        self.root, self.dicom_port, self.http_port = root, free_port(), free_port()
        root.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "chexnet-test", "DicomAet": ORTHANC_AET, "DicomPort": self.dicom_port,
            "HttpPort": self.http_port, "StorageDirectory": str(root / "storage"),
            "IndexDirectory": str(root / "index"), "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomServerEnabled": True,
            "DicomModalities": {"chexnet": [chexnet_aet, "127.0.0.1", chexnet_port]},
            "Plugins": [], "HttpsVerifyPeers": False, "DicomScuTimeout": 30,
            "StableAge": 1, "LogExportedResources": False,
        }
        if dicomweb:
            if not DICOMWEB_PLUGIN.is_file():
                pytest.skip(f"Orthanc's DICOMweb plugin is not installed ({DICOMWEB_PLUGIN}; "
                            "apt-get install orthanc-dicomweb)")
            config["Plugins"] = [str(DICOMWEB_PLUGIN)]
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        config.update(options or {})
        (root / "orthanc.json").write_text(json.dumps(config, indent=1))
        self.log = open(root / "orthanc.log", "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen([binary, str(root / "orthanc.json")], stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"Orthanc exited: {(self.root / 'orthanc.log').read_text()}")
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("Orthanc did not start")

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json"):
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read() or b"null")

    def get(self, path: str):
        return self.request("GET", path)

    def upload(self, path: Path) -> dict:
        """POST /instances: returns Orthanc's answer (ID, ParentStudy...)."""
        return self.request("POST", "/instances", path.read_bytes(), "application/dicom")

    def store_to(self, modality: str, ids: list[str]) -> dict:
        """Ask Orthanc to C-STORE these resources to a declared modality."""
        body = json.dumps({"Resources": ids, "Synchronous": True}).encode()
        return self.request("POST", f"/modalities/{modality}/store", body)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
