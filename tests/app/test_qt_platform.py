"""No desktop, or a bare system without Qt's X11 libraries: the viewer says what to install
(one line: the plugin, why, the apt-get command) and exits 1, instead of only Qt's abort."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chexnet.app.qt_platform import (
    APT_GET,
    EXIT_NO_PLATFORM,
    XCB_LIBRARIES,
    failed_plugin,
    library_hint,
    missing_libraries,
    platform_hint,
    plugin_file,
)

README = Path(__file__).resolve().parents[2] / "README.md"
QT_FAILURE = 'Could not load the Qt platform plugin "xcb" in "" even though it was found.'
QT_ABORT = ("This application failed to start because no Qt platform plugin could be "
            "initialized. Reinstalling the application may fix this problem.")


def test_the_failure_is_recognised_in_qts_messages():
    assert failed_plugin(QT_FAILURE) == "xcb"
    assert failed_plugin('Could not find the Qt platform plugin "wayland" in ""') == "wayland"
    assert failed_plugin(QT_ABORT, {"QT_QPA_PLATFORM": "eglfs"}) == "eglfs"
    assert failed_plugin(QT_ABORT, {}) == "xcb"
    assert failed_plugin("This plugin does not support propagateSizeHints()") is None


def test_the_hint_names_the_plugin_why_and_the_apt_get_line():
    hint = platform_hint("xcb", ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"], {})
    assert "\n" not in hint
    assert hint.startswith('chexnet-viewer: Qt could not start its platform plugin "xcb"')
    assert "missing libxcb-icccm.so.4, libxcb-keysyms.so.1" in hint
    assert "DISPLAY is not set" in hint
    assert APT_GET in hint
    assert "QT_QPA_PLATFORM=offscreen" in hint
    for package in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxkbcommon-x11-0",
                    "libegl1", "libfontconfig1", "libdbus-1-3"):
        assert f" {package}" in APT_GET
    quiet = platform_hint("xcb", [], {"DISPLAY": ":0"})
    assert "(" not in quiet.split("plugin")[1].split(".")[0]  # no reason it cannot know


def test_a_missing_qt_library_at_import_gets_the_same_line():
    error = "libEGL.so.1: cannot open shared object file: No such file or directory"
    hint = library_hint(error)
    assert "missing libEGL.so.1" in hint
    assert APT_GET in hint
    assert library_hint("No module named 'PySide6'") is None


def test_missing_libraries_reads_ldd(tmp_path):
    if shutil.which("ldd") is None:
        pytest.skip("no ldd here")
    text = tmp_path / "notes.so"
    text.write_text("not a library")
    assert missing_libraries(text) == []
    assert missing_libraries(tmp_path / "absent.so") == []


def test_every_x11_library_of_the_plugin_has_its_package():
    """Against Qt as installed: a new xcb dependency of a later Qt fails here, not on a user."""
    if shutil.which("ldd") is None:
        pytest.skip("no ldd here")
    out = subprocess.run(["ldd", str(plugin_file("xcb"))], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    needed = {line.split("=>")[0].strip() for line in out.splitlines() if "=>" in line}
    x11 = {name for name in needed if name.startswith(("libxcb-", "libxkbcommon"))}
    assert x11 - set(XCB_LIBRARIES) - {"libxcb-util.so.1", "libxcb-shm.so.0",
                                       "libxcb-sync.so.1", "libxcb-xfixes.so.0",
                                       "libxcb-render.so.0"} == set()


def test_no_display_prints_the_hint_and_exits_non_zero(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="xcb", XDG_CONFIG_HOME=str(tmp_path),
               CHEXNET_HOME=str(tmp_path / "chexnet"))
    result = subprocess.run([sys.executable, "-m", "chexnet.app.main"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_NO_PLATFORM
    hint = [line for line in result.stderr.splitlines() if line.startswith("chexnet-viewer:")]
    assert len(hint) == 1, result.stderr
    assert 'platform plugin "xcb"' in hint[0]
    assert "DISPLAY is not set" in hint[0]
    assert "sudo apt-get install -y" in hint[0]
    assert "Traceback" not in result.stderr
    assert 'Could not load the Qt platform plugin "xcb"' in result.stderr  # Qt's own words too


def test_the_readme_lists_what_the_hint_installs():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The viewer: `chexnet-viewer`"):]
    section = section[:section.index("\n## ", 10)]
    listed = " ".join(section.replace("\\\n", " ").split())
    assert APT_GET in listed
