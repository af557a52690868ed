"""chexnet.resources: package data (model packages, sample study)."""
