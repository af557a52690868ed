"""Warnings caught by one reader thread never land in another's list (the viewer decodes on a
thread pool; ``warnings.catch_warnings`` alone is not thread-safe before Python 3.14)."""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from chexnet.inference import load_image
from chexnet.inference.errors import ChexnetInputError
from chexnet.inference.io.warning_guard import guarded_warnings
from tests.bad_corpus import build_bad_corpus


def test_two_threads_each_see_only_their_own_warnings():
    inside, done = threading.Event(), threading.Event()
    seen: dict[str, list[str]] = {}

    def first():
        with guarded_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inside.set()
            done.wait(0.3)  # the other thread tries to warn meanwhile
            warnings.warn("first", UserWarning, stacklevel=1)
        seen["first"] = [str(w.message) for w in caught]

    def second():
        inside.wait()
        with guarded_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.warn("second", UserWarning, stacklevel=1)
        seen["second"] = [str(w.message) for w in caught]
        done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert seen == {"first": ["first"], "second": ["second"]}


def test_damaged_files_are_refused_when_loaded_concurrently(tmp_path, rg1_uncr, rg1_j2kr):
    corpus = build_bad_corpus(tmp_path, rg1_uncr, rg1_j2kr)
    damaged = [corpus[n] for n in ("cut_j2k.dcm", "cut_pixels.dcm", "short_pixels.dcm",
                                   "cut.png", "cut.jpg")] * 3

    def outcome(path):
        with pytest.raises(ChexnetInputError) as info:
            load_image(path)
        return info.value.path

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape a reader's own catch
        with ThreadPoolExecutor(max_workers=4) as pool:
            assert list(pool.map(outcome, damaged)) == damaged
