"""Command lines: argument parsing, then one call into the library.

``chexnet-train`` (:func:`.train.main`; also ``python -m chexnet.training.cli``) and the
``chexnet`` subcommands registered through the ``chexnet.commands`` entry points:
``export`` (:mod:`.export`), ``eval`` (:mod:`.eval`), ``import`` (:mod:`.import_weights`),
``labels-from-reports`` (:mod:`.labels`), each a ``register(subparsers)`` with a ``run(args)``.
"""
