"""Fuzz cases: one seed file, one (or a stack of two) mutation operators, from (seed, index).

``make_case(seed, index, base_files, out_dir)`` is deterministic: the same (seed, index) and the
same seed set (:func:`build_base_files` with the same options) give the same bytes on every
machine, so any case of a run can be regenerated from the two numbers its finding lists.
"""

from __future__ import annotations

import json
import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.dicom_ops import DICOM_OPS, J2K_OPS
from tests.fuzz.png_ops import PNG_OPS
from tests.fuzz.seeds import PHI, PHI_NEEDLES, BaseFile, build_base_files, phi_hits

__all__ = ["OPERATORS", "PHI", "PHI_NEEDLES", "BaseFile", "Case", "build_base_files",
           "make_case", "operators_for", "phi_hits"]

#: Every operator by name (the names in params and tables).
OPERATORS = {**DICOM_OPS, **J2K_OPS, **PNG_OPS}
#: Probability that a case stacks a second operator on the first.
STACK_PROBABILITY = 0.15
#: How often each kind of seed is drawn (then a seed of that kind, uniformly).
KIND_WEIGHTS = {"native": 0.4, "j2k": 0.3, "png": 0.3}


@dataclass(frozen=True)
class Case:
    seed: int
    index: int
    base: str
    operator: str  # "a" or "a+b" for a stack
    params: list[dict] = field(default_factory=list)
    path: Path | None = None
    sparse_size: int | None = None  # the file was extended sparsely to this size

    def describe(self) -> str:
        return f"({self.seed}, {self.index}) {self.base} {self.operator} {json.dumps(self.params)}"


def operators_for(kind: str) -> list[str]:
    if kind == "png":
        return sorted(PNG_OPS)
    return sorted(DICOM_OPS) + (sorted(J2K_OPS) if kind == "j2k" else [])


def mutate(base: BaseFile, rng: random.Random) -> tuple[bytes, list[str], list[dict]]:
    data = base.path.read_bytes()
    names = operators_for(base.kind)
    stack = [rng.choice(names)]
    if rng.random() < STACK_PROBABILITY:
        stack.append(rng.choice(names))
    params = []
    for name in stack:
        try:
            data, p = OPERATORS[name](data, rng)
        except (AssertionError, ValueError, IndexError, AttributeError, struct.error) as err:
            # the first operator broke what the second looks for: the case is the first alone
            p = {"skipped": type(err).__name__}
        params.append(p)
    return data, stack, params


def make_case(seed: int, index: int, base_files: dict[str, BaseFile], out_dir: Path, *,
              sparse: bool = True) -> Case:
    """Write case (seed, index) into ``out_dir`` and describe it. ``sparse=False``: a lying
    length that asks for a sparse extension (>= 1 GB on paper) is written without it (the file
    then ends early); the bytes are otherwise the same."""
    rng = random.Random(f"fuzz/{seed}/{index}")
    kinds = sorted({b.kind for b in base_files.values()})
    kind = rng.choices(kinds, [KIND_WEIGHTS.get(k, 1.0) for k in kinds])[0]
    base = base_files[rng.choice(sorted(n for n, b in base_files.items() if b.kind == kind))]
    data, stack, params = mutate(base, rng)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"case_{seed}_{index:06d}_{stack[0]}{base.suffix}"
    path.write_bytes(data)
    size = max((p.get("sparse_size", 0) for p in params), default=0) if sparse else 0
    if size > len(data):
        os.truncate(path, size)
    return Case(seed, index, base.name, "+".join(stack), params, path,
                size if size > len(data) else None)


def named_case(name: str, operator: str, base: BaseFile, out_dir: Path,
               draw: int = 0) -> Case:
    """One operator on one seed, drawn with a fixed generator (for hand-written cases)."""
    rng = random.Random(f"named/{name}/{draw}")
    data, params = OPERATORS[operator](base.path.read_bytes(), rng)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"named_{name}{base.suffix}"
    path.write_bytes(data)
    sparse = params.get("sparse_size")
    if sparse and sparse > len(data):
        os.truncate(path, sparse)
    return Case(-1, draw, base.name, operator, [params], path, sparse)
