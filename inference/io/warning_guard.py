"""``warnings.catch_warnings`` that is safe when readers run on several threads.

The loaders turn pydicom's and Pillow's warnings into named errors (a truncated file, a
decompression bomb) by catching them. ``catch_warnings`` swaps process-wide state and is not
thread-safe before Python 3.14: with two decodes at once, one thread's warning can land in the
other's list (a damaged file then loads) or escape to stderr. The viewer decodes on a thread
pool, so every such block in this package goes through one lock.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()


@contextmanager
def guarded_warnings(*, record: bool = False) -> Iterator[list[warnings.WarningMessage] | None]:
    """``warnings.catch_warnings(record=record)``, one thread at a time."""
    with _LOCK, warnings.catch_warnings(record=record) as caught:
        yield caught
