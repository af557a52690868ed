"""``python -m chexnet.training.cli`` = ``chexnet-train`` (``torchrun -m chexnet.training.cli``)."""

import sys

from chexnet.training.cli.train import main

sys.exit(main())
