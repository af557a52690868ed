"""``python -m chexnet.inference.cli`` = ``chexnet``."""

import sys

from chexnet.inference.cli.main import main

sys.exit(main())
