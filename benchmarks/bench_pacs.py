"""Reading from PACS (issue 20): retrieve-to-findings for RG1_J2KR from a local Orthanc against
opening the same file from disk.

PACS: ``retrieve_study`` by C-GET into an empty cache (C-FIND at the series and image levels,
the association, the transfer as stored: JPEG 2000, the atomic write), then ``load_image`` +
``Engine.predict`` of the retrieved file. DISK: ``load_image`` + ``Engine.predict`` of the
original file. Same process, same bundled model, engine loaded before the clock, interleaved
rounds (``_machine.interleaved``). Target: ratio <= 1.5. Also the C-GET of the file alone and a
second retrieval served from the cache. ``--web`` adds the same over DICOMweb (WADO-RS).

    python benchmarks/bench_pacs.py               # 7 rounds
    python benchmarks/bench_pacs.py --repeats 15 --web
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (str(ROOT), str(Path(__file__).parent)):
    if extra not in sys.path:
        sys.path.insert(0, extra)

import _machine  # noqa: E402
import pydicom  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

from chexnet.inference import Engine, load_image  # noqa: E402
from chexnet.inference.package.lookup import resolve_model  # noqa: E402
from chexnet.inference.pacs.cache import PacsCache  # noqa: E402
from chexnet.inference.pacs.client import retrieve_study  # noqa: E402
from chexnet.inference.pacs.node import PacsNode  # noqa: E402
from tests.node.helpers import free_port  # noqa: E402
from tests.pacs.orthanc import Orthanc  # noqa: E402

TARGET = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--web", action="store_true", help="also DICOMweb (WADO-RS)")
    parser.add_argument("--nodelay", action="store_true",
                        help="start Orthanc with TCP_NODELAY=1 (DCMTK then disables Nagle's "
                             "algorithm: no 40 ms stall per DIMSE response)")
    args = parser.parse_args(argv)
    rg1 = Path(get_testdata_file("RG1_J2KR.dcm"))
    study = str(pydicom.dcmread(rg1, stop_before_pixels=True).StudyInstanceUID)
    _machine.print_facts("reading from PACS (local Orthanc 1.10"
                         + (", TCP_NODELAY=1)" if args.nodelay else ")"),
                         ["pynetdicom", "dicomweb-client", "onnxruntime-gpu",
                          "pylibjpeg-openjpeg"])
    _machine.report_other_load("before the run")
    engine = Engine(resolve_model(None), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        orthanc = Orthanc(Path(tmp) / "orthanc", free_port(), dicomweb=args.web,
                          env={"TCP_NODELAY": "1"} if args.nodelay else None)
        try:
            orthanc.upload(rg1)
            dimse = PacsNode.parse(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}")
            web = PacsNode.parse(orthanc.url + "/dicom-web")
            caches = Path(tmp) / "caches"

            def fresh_cache() -> PacsCache:
                shutil.rmtree(caches, ignore_errors=True)
                return PacsCache(caches)

            def from_disk() -> None:
                engine.predict([load_image(rg1)])

            def from_pacs(node: PacsNode = dimse) -> None:
                [path] = retrieve_study(node, study, fresh_cache())
                engine.predict([load_image(path)])

            def get_only() -> None:
                retrieve_study(dimse, study, fresh_cache())

            fns = [from_pacs, from_disk, get_only]
            if args.web:
                fns.append(lambda: from_pacs(web))
            times = _machine.interleaved(fns, repeats=args.repeats, warmup=1)
            pacs_ms, disk_ms, get_ms = times[:3]
            ratio = _machine.paired_ratio(pacs_ms, disk_ms)
            verdict = "met" if ratio <= TARGET else "MISSED"
            print(f"\nRG1_J2KR (1955x1841 JPEG 2000 lossless, {rg1.stat().st_size / 1e6:.1f} MB), "
                  f"{len(pacs_ms)} rounds, medians:")
            print(f"  from disk: load + predict            {_machine.median(disk_ms):7.0f} ms")
            print(f"  from PACS: C-GET + load + predict    {_machine.median(pacs_ms):7.0f} ms "
                  f"-> ratio {ratio:.2f} (target <= {TARGET}: {verdict})")
            print(f"  C-GET alone (find series/images, transfer, write) "
                  f"{_machine.median(get_ms):5.0f} ms")
            if args.web:
                web_ms = times[3]
                print(f"  from DICOMweb: WADO-RS + load + predict {_machine.median(web_ms):5.0f} ms"
                      f" -> ratio {_machine.paired_ratio(web_ms, disk_ms):.2f}")
            cache = PacsCache(caches)
            retrieve_study(dimse, study, cache)
            started = time.perf_counter()
            retrieve_study(dimse, study, cache)
            print(f"  a second retrieval, from the cache:  "
                  f"{(time.perf_counter() - started) * 1000:7.1f} ms")
        finally:
            orthanc.stop()
    _machine.report_other_load("after the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
