"""``chexnet-viewer`` entry point.

The desktop viewer is built in its own issue (#4); until then this entry point says so plainly
instead of pretending.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chexnet-viewer",
        description="Desktop chest X-ray reader (PySide6 + pyqtgraph). Not built yet: use "
                    "`chexnet predict --cam-out DIR` for findings and heatmaps meanwhile.")
    parser.add_argument("paths", nargs="*", help="DICOM/PNG/JPEG files or folders to open")
    parser.parse_args(argv)
    print("chexnet-viewer: the viewer is not available in this version yet; "
          "use `chexnet predict PATH --cam-out DIR`.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
