"""How an engine hands a batch to its ONNX Runtime session: plainly, or through IO binding.

On the CPU provider ``session.run`` is already copy-free, and the engine keeps it
(:class:`SessionRunner`). On a GPU, ``session.run`` would return every output through host
memory ORT picks per call; IO binding (:class:`BoundRunner`) copies each batch's input to the
device once and fetches the bound outputs once, after the whole graph ran.
:class:`FixedBatchRunner` goes one step further for CUDA graphs: the input and outputs live in
device buffers allocated once, at one batch shape (a short last batch is zero-padded and the
padding's rows dropped), because a captured graph replays fixed addresses.

All three work on the CPU provider too (``device_type="cpu"``), which is how they are tested:
bound runs must equal plain ``session.run`` bit for bit.

Pinned (page-locked) host buffers: ONNX Runtime's Python API allocates OrtValues on "cpu" or on
a device, never in CUDA pinned host memory, so the host side of each copy is ordinary pageable
memory (the driver stages it); see docs/decisions.md, "GPU path (issue 17)".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class SessionRunner:
    """``session.run`` as it always was (the CPU path)."""

    max_batch: int | None = None

    def __init__(self, session: Any, input_name: str, output_names: Sequence[str]) -> None:
        self.session, self.input_name, self.output_names = session, input_name, list(output_names)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: batch})


class BoundRunner(SessionRunner):
    """IO binding: the input copied once to ``device_type``, outputs left there by the graph
    and copied to the host once per batch."""

    def __init__(self, session: Any, input_name: str, output_names: Sequence[str],
                 device_type: str = "cuda", device_id: int = 0) -> None:
        super().__init__(session, input_name, output_names)
        self.device_type, self.device_id = device_type, device_id

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(batch, dtype=np.float32))
        for name in self.output_names:
            binding.bind_output(name, self.device_type, self.device_id)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


class FixedBatchRunner(SessionRunner):
    """Input and output buffers allocated once on ``device_type`` at batch ``batch`` (what CUDA
    graph capture needs); shorter batches are zero-padded, their padding rows dropped."""

    def __init__(self, session: Any, input_name: str, output_names: Sequence[str],
                 batch: int, input_shape: tuple[int, ...], device_type: str = "cuda",
                 device_id: int = 0) -> None:
        import onnxruntime as ort

        super().__init__(session, input_name, output_names)
        self.max_batch = int(batch)
        self.shape = (self.max_batch, *input_shape)
        self.input = ort.OrtValue.ortvalue_from_shape_and_type(self.shape, np.float32,
                                                               device_type, device_id)
        self.binding = session.io_binding()
        self.binding.bind_ortvalue_input(input_name, self.input)
        # Outputs at fixed addresses: allocated here when the graph gives their shapes (batch
        # aside), else by the first run and then bound by value for every later run.
        shapes = {o.name: o.shape for o in session.get_outputs()}
        self.outputs: list[Any] | None = []
        for name in self.output_names:
            shape = [self.max_batch, *shapes[name][1:]]
            if not all(isinstance(d, int) for d in shape):
                self.outputs = None
                break
            self.outputs.append(ort.OrtValue.ortvalue_from_shape_and_type(
                shape, np.float32, device_type, device_id))
        for i, name in enumerate(self.output_names):
            if self.outputs is None:
                self.binding.bind_output(name, device_type, device_id)
            else:
                self.binding.bind_ortvalue_output(name, self.outputs[i])

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        n = len(batch)
        if n > self.max_batch:
            raise ValueError(f"batch of {n} inputs; this runner's buffers hold {self.max_batch}")
        full = np.zeros(self.shape, dtype=np.float32)
        full[:n] = batch
        self.input.update_inplace(full)
        self.session.run_with_iobinding(self.binding)
        if self.outputs is None:
            self.outputs = self.binding.get_outputs()
            for name, value in zip(self.output_names, self.outputs, strict=True):
                self.binding.bind_ortvalue_output(name, value)
        return [np.array(value.numpy()[:n]) for value in self.outputs]


def make_runner(session: Any, input_name: str, output_names: Sequence[str], *, gpu: bool,
                cuda_graph: bool = False, batch: int = 8,
                input_shape: tuple[int, ...] = (3, 224, 224), device_id: int = 0
                ) -> SessionRunner:
    """The runner for a session whose first provider is a GPU one (``gpu``) or the CPU."""
    if not gpu:
        return SessionRunner(session, input_name, output_names)
    if cuda_graph:
        return FixedBatchRunner(session, input_name, output_names, batch, input_shape,
                                "cuda", device_id)
    return BoundRunner(session, input_name, output_names, "cuda", device_id)
