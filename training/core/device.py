"""Where training runs: the `device` setting of every stage (auto | cpu | cuda), resolved once.

- `resolve_device`: "auto" = CUDA when a GPU is visible, else CPU; an explicit "cuda" without
  one fails here, at settings/launch time, before any work is done.
- `MixedPrecision`: autocast + loss scaling for training steps on CUDA, a no-op on CPU (the CPU
  path stays operation for operation what it was, so every published figure is unchanged).
  bfloat16 where the GPU has it (Ampere+): float32's range, so no loss scaling is needed;
  otherwise float16 with a `GradScaler` (float16's range under- and overflows gradients).
  Only training steps use it: evaluation, advantages and serving score the whole catalogue in
  float32, because rankings and V(s) are decided by score differences bfloat16 would round away.
- `ddp_backend`: NCCL on CUDA, gloo on CPU; `rank_device`: one GPU per local rank.
- `to_device`: a batch dict's tensors moved (numpy arrays left alone); on CPU the same dict.
Random generators (shuffles, negatives, samples) stay on the CPU and their draws are moved, so a
seed means the same on both devices and the CPU path is bit-identical to the code before it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import torch

DeviceName = Literal["auto", "cpu", "cuda"]
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")
CPU = torch.device("cpu")


def resolve_device(name: str | torch.device = "auto", setting: str = "device") -> torch.device:
    """The torch device for a `device` setting; `setting` names it in the errors."""
    if isinstance(name, torch.device):
        return name
    if name not in DEVICE_CHOICES:
        allowed = ", ".join(repr(c) for c in DEVICE_CHOICES)
        raise ValueError(f"{setting} = {name!r}: expected one of {allowed}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return CPU
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"{setting} = 'cuda' but torch sees no CUDA GPU (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'no'}): set {setting} to 'auto' or 'cpu', or "
            "install a CUDA build of torch on a machine with an NVIDIA GPU"
        )
    return torch.device("cuda")


def check_device(name: str, setting: str) -> None:
    """Fail at settings time (a settings dataclass's `__post_init__`) on a device that cannot
    be used here; "auto" always passes."""
    resolve_device(name, setting)


def rank_device(device: torch.device, local_rank: int) -> torch.device:
    """One GPU per local rank under torchrun; every CPU rank shares the CPU."""
    if device.type != "cuda":
        return device
    if local_rank >= torch.cuda.device_count():
        raise RuntimeError(
            f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible): "
            "use at most one DDP process per GPU (ddp_processes)"
        )
    return torch.device("cuda", local_rank)


def ddp_backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def device_of(module: Any) -> torch.device:
    """Where a model's weights are (CPU for one without parameters, or not an `nn.Module`)."""
    if not isinstance(module, torch.nn.Module):
        return CPU
    p = next(module.parameters(), None)
    return CPU if p is None else p.device


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with its tensors on `device`; on CPU the same dict, nothing copied."""
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}  # fmt: skip


def state_on_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with its tensors on the CPU: the same object when they already are."""
    if all(v.device == CPU for v in state.values()):
        return state
    out = type(state)((k, v.cpu()) for k, v in state.items())
    if hasattr(state, "_metadata"):  # load_state_dict reads the modules' versions from it
        out._metadata = state._metadata  # type: ignore[attr-defined]
    return out


@contextlib.contextmanager
def on_device(module: Any, device: torch.device) -> Iterator[Any]:
    """`module` on `device` for the block, then back where it was (callers keep their CPU
    model); anything that is not an `nn.Module` (a test's reward model) is left alone."""
    if not isinstance(module, torch.nn.Module) or device_of(module) == device:
        yield module
        return
    home = device_of(module)
    try:
        yield module.to(device)
    finally:
        module.to(home)


class MixedPrecision:
    """Autocast and loss scaling of training steps: bf16 (or fp16 + GradScaler) on CUDA, off
    on CPU, where `scale` returns the loss itself and `step` is `optimizer.step()`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if self.dtype == torch.float16:
                self.scaler = torch.amp.GradScaler("cuda")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """`loss.backward()`, scaled, outside autocast (a step may call it inside one)."""
        if self.dtype is None:
            loss.backward()
            return
        with torch.autocast(self.device.type, enabled=False):
            (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Before gradient clipping: the clip norm is in unscaled units."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
