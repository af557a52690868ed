"""Which PACS to talk to: a DIMSE node (``AE@host:port``, our calling AE title, TLS or not) or a
DICOMweb service (``http(s)://.../dicom-web``). One value type for both, so that the command
line, the viewer's settings and the library share the parser and the display form; the form a
node prints as is the form it parses from (settings store that text)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

DEFAULT_CALLING_AE = "CHEXNET"
DEFAULT_TIMEOUT_S = 30.0
#: the model-readable modalities: what is searched and retrieved first unless told otherwise
READABLE_MODALITIES = ("CR", "DX")

NODE_FORM = "AE@host:port (e.g. ORTHANC@pacs.example.org:4242) or a DICOMweb URL"
_DIMSE = re.compile(r"([^@]{1,16})@(\[[^\]]+\]|[^:@/]+):(\d{1,5})")


@dataclass(frozen=True)
class PacsNode:
    """A PACS: ``url`` set for DICOMweb, else ``ae_title@host:port`` called as ``calling_ae``.
    ``timeout_s`` bounds each wait for an answer (association, each response)."""

    ae_title: str = ""
    host: str = ""
    port: int = 0
    calling_ae: str = DEFAULT_CALLING_AE
    url: str = ""
    tls: bool = False
    tls_ca: str = ""  # a CA bundle (PEM) to trust; empty: the system's
    timeout_s: float = DEFAULT_TIMEOUT_S
    move_port: int = 0  # 0: retrieve by C-GET; else C-MOVE to our storage SCP on this port

    @classmethod
    def parse(cls, text: str, calling_ae: str | None = None, **options) -> PacsNode:
        """``AE@host:port`` or ``http(s)://...`` -> a node; ValueError naming the expected form.
        ``options`` set the other fields (tls, tls_ca, timeout_s)."""
        text = text.strip()
        calling = (calling_ae or DEFAULT_CALLING_AE).strip()
        if not 0 < len(calling) <= 16 or "\\" in calling:
            raise ValueError(f"calling AE title {calling_ae!r}: 1 to 16 characters, no backslash")
        if text.lower().startswith(("http://", "https://")):
            parts = urlsplit(text)
            if not parts.hostname:
                raise ValueError(f"{text!r}: a DICOMweb URL needs a host, e.g. "
                                 "https://pacs.example.org/dicom-web")
            return cls(url=text.rstrip("/"), calling_ae=calling, **options)
        m = _DIMSE.fullmatch(text)
        if not m or not 0 < int(m.group(3)) < 65536 or "\\" in m.group(1):
            raise ValueError(f"{text!r}: expected {NODE_FORM}")
        return cls(m.group(1).strip(), m.group(2).strip("[]"), int(m.group(3)), calling,
                   **options)

    @property
    def is_web(self) -> bool:
        return bool(self.url)

    def with_timeout(self, seconds: float) -> PacsNode:
        return replace(self, timeout_s=seconds)

    @property
    def address(self) -> str:
        """The parseable form: the URL, or ``AE@host:port``."""
        if self.is_web:
            return self.url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"

    def __str__(self) -> str:
        return self.address
