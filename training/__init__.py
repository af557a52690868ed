"""chexnet.training: torch code that produces model packages.

Never imported by chexnet.app; chexnet.inference reaches its `export` and `eval` commands only
through the `chexnet.commands` entry points, and they import torch only when they run.
"""
