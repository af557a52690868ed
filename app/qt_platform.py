"""When Qt cannot start its platform plugin, say what to install instead of only aborting.

On a bare Linux system Qt's ``xcb`` plugin (the X11 desktop) needs libraries a minimal install
lacks; Qt then prints its own text and aborts. :func:`platform_guard` watches Qt's messages while
the ``QApplication`` is made: on that fatal message it prints Qt's text, then one line naming the
plugin, why it failed (the libraries ``ldd`` cannot find, or no display) and the ``apt-get``
command, and exits with :data:`EXIT_NO_PLATFORM` (no core dump). The package list is the one in
the README ("The viewer"), checked with ``ldd`` on PySide6's ``libqxcb.so`` (Qt 6.11).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

EXIT_NO_PLATFORM = 1

#: What Qt's xcb plugin loads (``ldd libqxcb.so``, Qt 6.11) -> the Debian/Ubuntu package.
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
APT_GET = "sudo apt-get install -y " + " ".join(sorted(set(XCB_LIBRARIES.values())))
HEADLESS = "QT_QPA_PLATFORM=offscreen chexnet-viewer PATH --screenshot OUT.png"

_FATAL = re.compile(r'Could not (?:load|find) the Qt platform plugin "([^"]+)"')
_NO_PLUGIN = "no Qt platform plugin could be initialized"


def failed_plugin(qt_message: str, env: Mapping[str, str] | None = None) -> str | None:
    """The platform plugin a Qt message says could not start, or None for any other message
    (Qt names it in one message and aborts with another: either is recognised)."""
    found = _FATAL.search(qt_message)
    if found:
        return found.group(1)
    if _NO_PLUGIN in qt_message:
        env = os.environ if env is None else env
        return env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0] or "xcb"
    return None


def platform_hint(plugin: str, missing: list[str], env: Mapping[str, str]) -> str:
    """One line: which plugin failed, why (missing libraries, no display), what to run."""
    why = []
    if missing:
        why.append("missing " + ", ".join(missing))
    if plugin == "xcb" and not env.get("DISPLAY"):
        why.append("no X display (DISPLAY is not set)")
    if plugin.startswith("wayland") and not env.get("WAYLAND_DISPLAY"):
        why.append("no Wayland display (WAYLAND_DISPLAY is not set)")
    reason = f" ({'; '.join(why)})" if why else ""
    return (f'chexnet-viewer: Qt could not start its platform plugin "{plugin}"{reason}. '
            f"On Debian/Ubuntu install what it needs: {APT_GET}; without a desktop, render "
            f"headless: {HEADLESS}")


def library_hint(import_error: str) -> str | None:
    """The same line when Qt's own libraries cannot load (importing PySide6 failed on a
    missing system library); None for any other import error."""
    found = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", import_error)
    if found is None:
        return None
    return (f"chexnet-viewer: Qt's libraries cannot load (missing {found.group(1)}). "
            f"On Debian/Ubuntu install what the viewer needs: {APT_GET}")


def missing_libraries(plugin_file: Path) -> list[str]:
    """The shared libraries ``plugin_file`` needs that the loader cannot find (``ldd``; empty
    when ``ldd`` is absent or says nothing)."""
    try:
        out = subprocess.run(["ldd", str(plugin_file)], capture_output=True, text=True,
                             timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({line.split("=>")[0].strip() for line in out.splitlines()
                   if "not found" in line})


def plugin_file(plugin: str) -> Path:
    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    return plugins / "platforms" / f"libq{plugin}.so"


@contextmanager
def platform_guard() -> Iterator[None]:
    """Around making the QApplication: Qt's messages are printed as Qt prints them; on its
    platform plugin failure the hint follows and the process exits (Qt would abort)."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    seen: list[str] = []

    def handler(mode, context, message: str) -> None:
        category = getattr(context, "category", None)
        shown = f"{category}: {message}" if category and category != "default" else message
        sys.stderr.write(shown + "\n")
        plugin = failed_plugin(message)
        if plugin is not None:
            seen.append(plugin)
        if mode == QtMsgType.QtFatalMsg and seen:
            hint = platform_hint(seen[0], missing_libraries(plugin_file(seen[0])), os.environ)
            sys.stderr.write(hint + "\n")
            sys.stderr.flush()
            os._exit(EXIT_NO_PLATFORM)

    previous = qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(previous)
