"""`chexnet screen` as a user runs it, in real processes: a folder mixing good images, the
bad-input corpus and decoders that crash, hang or get OOM-killed; kill -9 and resume; patient
data escaped in HTML and absent unless asked for; shards that cover the input exactly once."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pydicom
import pytest

from chexnet.inference.screen.decode import FAULTS_ENV
from tests.bad_corpus import build_bad_corpus
from tests.conftest import NIH_SAMPLE
from tests.inference.io.test_bad_inputs import rewrite
from tests.inference.screen.test_pipeline import noise_png

HOSTILE_NAME = "<script>alert(1)</script>"
FAULTS = "crash=segv_*;hang=hang_*;kill=oom_*"


def run_screen(*args: str, faults: str | None = FAULTS, timeout: float = 120,
               **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if faults:
        env[FAULTS_ENV] = faults
    return subprocess.run([sys.executable, "-m", "chexnet.inference.cli", "screen", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, check=False,
                          **popen)


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert 'File "' not in proc.stderr


@pytest.fixture
def mixed(tmp_path: Path, rg1_uncr: Path, rg1_j2kr: Path) -> tuple[Path, dict[str, str]]:
    """A folder and the status each of its files must get."""
    root = tmp_path / "in"
    (root / "deeper" / "still").mkdir(parents=True)
    expected = {}
    shutil.copy(rg1_uncr, root / "deeper" / "IM0001")  # DICOM without suffix
    expected["IM0001"] = "ok"
    for i in range(3):
        noise_png(root / f"gen{i}.png", i)
        expected[f"gen{i}.png"] = "ok"
    nih = sorted((NIH_SAMPLE / "images").glob("*.png"))[:2] if NIH_SAMPLE.is_dir() else []
    for p in nih:
        shutil.copy(p, root / "deeper" / "still" / p.name)
        expected[p.name] = "ok"
    for name in build_bad_corpus(root / "bad", rg1_uncr, rg1_j2kr):
        # every file of the shared corpus is refused; DICOM objects without an image (a
        # structured report, an encapsulated PDF) are read fine and have nothing to screen
        expected[name] = "not_analysed" if name in ("report_sr.dcm", "document.dcm") else "error"
    for i, name in enumerate(("segv_1.png", "hang_1.png", "oom_1.png")):
        noise_png(root / "deeper" / name, 10 + i)
        expected[name] = "error"
    shutil.copy(root / "gen0.png", root / "deeper" / "gen0_again.png")
    expected["gen0_again.png"] = "duplicate"

    def lateral(ds):
        ds.ViewPosition = "LL"
        ds.SOPInstanceUID = pydicom.uid.generate_uid()

    rewrite(rg1_uncr, root / "lateral.dcm", lateral)
    expected["lateral.dcm"] = "not_analysed"
    return root, expected


def test_mixed_folder_every_input_one_row(tiny_model, mixed, tmp_path):
    root, expected = mixed
    out = tmp_path / "out"
    proc = run_screen(str(root), "--out", str(out), "--model", str(tiny_model), "--timeout",
                      "5", "--workers", "2", "--batch-size", "2")
    assert proc.returncode == 1, proc.stderr
    no_traceback(proc)
    table = read_csv(out / "results.csv")
    assert sorted(Path(r["path"]).name for r in table) == sorted(expected)
    assert {Path(r["path"]).name: r["status"] for r in table} == expected
    reasons = {Path(r["path"]).name: r["reason"] for r in table}
    assert "SIGSEGV" in reasons["segv_1.png"]
    assert "SIGKILL" in reasons["oom_1.png"]
    assert "longer than 5 s" in reasons["hang_1.png"]
    assert "truncated" in reasons["cut_pixels.dcm"]
    assert "--max-pixels" in reasons["huge.png"]
    assert all(reasons[n] for n, s in expected.items() if s != "ok")
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == sum(s == "error" for s in expected.values())
    n = {k: sum(s == k for s in expected.values()) for k in ("ok", "not_analysed", "error")}
    n_ok = n["ok"]
    assert (f"{n_ok} analysed, {n['not_analysed']} not analysed, {n['error']} errors, "
            "1 duplicates") in proc.stdout
    assert "images/s" in proc.stdout
    # what computed it: the provider ONNX Runtime actually used, the batch, the decode processes
    assert "engine CPUExecutionProvider, batch 2, 2 decode processes" in proc.stdout
    html = (out / "report.html").read_text()
    assert "DEMO MODEL" in html
    assert html.count('class="thumb"') >= 2 * n_ok  # thumbnail + heatmap per analysed image


def test_kill_9_then_resume_gives_the_clean_csv(tiny_model, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for i in range(6):
        noise_png(root / f"a{i}.png", i)
        noise_png(root / f"z{i}.png", 20 + i)
    noise_png(root / "hang_m.png", 99)  # the run waits here (timeout) while we kill it
    common = ("--model", str(tiny_model), "--timeout", "3", "--workers", "2", "--batch-size",
              "2")
    clean = run_screen(str(root), "--out", str(tmp_path / "clean"), *common)
    assert clean.returncode == 1, clean.stderr
    out = tmp_path / "killed"
    env = {**os.environ, FAULTS_ENV: FAULTS}
    proc = subprocess.Popen([sys.executable, "-m", "chexnet.inference.cli", "screen", str(root),
                             "--out", str(out), *common], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    journal = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.is_file() and journal.read_text().count("\n") >= 7:  # header + the a*.png
            break
        time.sleep(0.05)
    helpers = psutil.Process(proc.pid).children(recursive=True)  # fork server, decoders
    assert helpers
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _gone, alive = psutil.wait_procs(helpers, timeout=10)
    assert not alive, alive  # even the decoder stuck on hang_m.png died with the run
    lines = journal.read_bytes().count(b"\n")
    assert 7 <= lines < 14  # killed mid-run
    with open(journal, "ab") as fh:  # and as if killed mid-write as well
        fh.write(b'{"path":"' + str(root / "z0.png").encode() + b'","status":"o')
    resumed = run_screen(str(root), "--out", str(out), *common)
    assert resumed.returncode == 1, resumed.stderr
    no_traceback(resumed)
    assert "from an earlier run" in resumed.stdout
    assert (out / "results.csv").read_bytes() == (tmp_path / "clean" / "results.csv").read_bytes()


@pytest.mark.parametrize("include_phi", [False, True], ids=["default", "include-phi"])
def test_patient_data_escaped_and_only_when_asked(tiny_model, rg1_uncr, tmp_path, include_phi):
    def hostile(ds):
        ds.PatientName = HOSTILE_NAME
        ds.PatientID = "ID-<img src=x onerror=alert(2)>"
        ds.PatientBirthDate = "19010101"

    root = tmp_path / "in"
    root.mkdir()
    rewrite(rg1_uncr, root / "chest.dcm", hostile)
    noise_png(root / "<b onmouseover=alert(3)>.png", 1)  # a hostile file name, too
    out = tmp_path / "out"
    proc = run_screen(str(root), "--out", str(out), "--model", str(tiny_model),
                      *(["--include-phi"] * include_phi), faults=None)
    assert proc.returncode == 0, proc.stderr
    html = (out / "report.html").read_text()
    table = read_csv(out / "results.csv")
    journal = (out / "results.jsonl").read_text()
    for text in (proc.stdout, proc.stderr, html):
        assert "<script>" not in text
        assert "<img src=x" not in text
        assert "<b onmouseover" not in text
    assert "&lt;b onmouseover=alert(3)&gt;.png" in html
    if include_phi:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "19010101" in html
        row = next(r for r in table if r["path"].endswith("chest.dcm"))
        assert row["patient_name"] == HOSTILE_NAME  # CSV holds the value, HTML escapes it
        assert row["patient_id"] == "ID-<img src=x onerror=alert(2)>"
    else:
        for text in (html, journal, (out / "results.csv").read_text(), proc.stdout):
            assert "alert(1)" not in text
            assert "onerror" not in text
            assert "19010101" not in text
        assert "patient_name" not in table[0]
    assert not (include_phi and "alert(1)" in proc.stdout + proc.stderr)


def test_shards_concatenate_to_the_whole_input(tiny_model, tmp_path):
    root = tmp_path / "in"
    for i in range(8):
        (root / f"p{i % 3}").mkdir(parents=True, exist_ok=True)
        noise_png(root / f"p{i % 3}" / f"im{i}.png", i)
    rows = []
    for i in range(2):
        proc = run_screen(str(root), "--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2",
                          "--model", str(tiny_model), faults=None)
        assert proc.returncode == 0, proc.stderr
        part = read_csv(tmp_path / f"s{i}" / "results.csv")
        assert part  # 8 files: both shards have some
        rows += part
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in root.rglob("*.png"))


def test_usage_errors_and_help(tiny_model, tmp_path):
    proc = run_screen(str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--model",
                      str(tiny_model), faults=None)
    assert proc.returncode == 2
    no_traceback(proc)
    assert "no such file" in proc.stderr
    noise_png(tmp_path / "a.png", 0)
    proc = run_screen(str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--model",
                      str(tiny_model), "--priority", "Dragons", faults=None)
    assert proc.returncode == 2
    assert "Effusion" in proc.stderr
    helped = run_screen("--help", faults=None)
    assert helped.returncode == 0
    for needle in ("examples:", "--resume", "--retry-failed", "--shard", "--include-phi",
                   "exactly one row"):
        assert needle in helped.stdout
