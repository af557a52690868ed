"""chexnet.training: torch code that produces model packages.

Never imported by chexnet.app or chexnet.inference.
"""
