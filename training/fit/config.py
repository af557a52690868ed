"""The training recipe's settings (:class:`TrainConfig`) and the checks on their combinations.

Torch-free, so ``chexnet-train`` can validate options before any heavy import or data work.
A run folder's ``run.json`` stores :meth:`TrainConfig.to_dict`; ``--resume`` rebuilds the
config from it, so field names are part of the run folder format.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from chexnet.inference.preprocessing import PreprocessSpec

BALANCE_MODES = ("none", "pos_weight", "oversample")
#: What training does with -1 (uncertain) labels: chexnet.training.data.uncertain.
UNCERTAIN_POLICIES = ("ignore", "ones", "zeros")
#: ``--precision``: the autocast dtype (:mod:`.precision`); auto: bf16/fp16 AMP on CUDA, fp32 on CPU
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
#: Data loader worker processes when neither ``--workers`` nor ``--threads`` says otherwise.
DEFAULT_WORKERS = 2


def default_workers(threads: int | None) -> int:
    """Data loader workers for ``--threads N`` (N - 1, at most :data:`DEFAULT_WORKERS`; 0 loads
    in the training process), or :data:`DEFAULT_WORKERS` without it."""
    return DEFAULT_WORKERS if threads is None else max(0, min(DEFAULT_WORKERS, threads - 1))


@dataclass
class TrainConfig:
    arch: str = "densenet121"
    labels: str = "all"
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 16
    workers: int = DEFAULT_WORKERS
    balance: str = "none"
    init: str | None = None  # "imagenet:PATH" or "run:RUN_DIR" (fine-tune a run's best.pt)
    size: int = 224
    resize: int = 224
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    plateau_patience: int = 0
    device: str = "auto"
    amp: bool = True
    max_steps_per_epoch: int | None = None  # tests and smoke runs only
    task: str = "multi-label"  # or "single-label": softmax + cross-entropy
    min_per_class: int | None = None  # resampling (training split only), off by default
    max_normal: int | None = None
    normal_fraction: float | None = None
    threads: int | None = None  # torch intra-op threads; None: torch's default (all cores)
    uncertain: str = "ignore"  # -1 labels: ignore (masked loss), ones or zeros (CheXpert's U-*)
    precision: str = "auto"  # see PRECISIONS; --no-amp (amp=False) means fp32
    compile: bool = False  # torch.compile the network (--compile)
    extra: dict = field(default_factory=dict)

    def spec(self) -> PreprocessSpec:
        return PreprocessSpec(size=self.size, resize=self.resize)

    @property
    def resampling(self) -> bool:
        return any(v is not None for v in (self.min_per_class, self.max_normal,
                                           self.normal_fraction))

    def to_dict(self) -> dict:
        return asdict(self)


def check_config(config: TrainConfig) -> None:
    """Refuse contradictory options before any data work (one-line ValueErrors)."""
    if config.task == "single-label" and config.balance != "none":
        raise ValueError(f"--balance {config.balance} is for multi-label training; for "
                         "single-label use --min-per-class / --max-normal (resampling)")
    if config.resampling and config.balance == "oversample":
        raise ValueError("--balance oversample and resampling (--min-per-class, --max-normal, "
                         "--normal-fraction) both rebalance the classes: choose one")
    if config.normal_fraction is not None and not 0 < config.normal_fraction < 1:
        raise ValueError(f"--normal-fraction must be between 0 and 1, not "
                         f"{config.normal_fraction}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, not "
                         f"{config.precision!r}")
    if config.threads is not None and config.threads < 1:
        raise ValueError(f"--threads must be at least 1, not {config.threads}")
    if config.uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"--uncertain {config.uncertain}: choose one of "
                         f"{', '.join(UNCERTAIN_POLICIES)}")
    if config.init and not config.init.startswith(("imagenet:", "run:")):
        raise ValueError(f"--init {config.init}: expected imagenet:PATH or run:RUN_DIR")
