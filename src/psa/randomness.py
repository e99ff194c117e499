"""Every random draw of a trial is keyed by (trial seed, purpose, meta-loop), never by a running
generator. A trial resumed from its checkpoint therefore continues exactly as if it had never
stopped, and the single-trial and batched engines draw identical numbers for the same seed.

Dropout masks come from a counter-based hash of (key, sample position, unit) rather than from a
generator, so a whole stack of trials gets its masks in a few tensor operations on any device,
bit-identical on CPU and GPU."""

import hashlib
import math

import torch

MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # < 2**27, so products of 32-bit values stay inside int64 without overflow


def stream_seed(seed: int, purpose: str, loop: int, step: int = 0) -> int:
    digest = hashlib.sha256(f"{seed}/{purpose}/{loop}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFFFFFFFFFFFFFF


def generator(seed: int, purpose: str, loop: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(stream_seed(seed, purpose, loop))


def shuffle(seed: int, loop: int, n: int) -> torch.Tensor:
    """The sample order of meta-loop `loop` (a new shuffle every epoch)."""
    return torch.randperm(n, generator=generator(seed, "shuffle", loop))


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash with good avalanche, on int64 tensors holding values < 2**32."""
    return _mix32_(x.clone())


def _mix32_(x: torch.Tensor) -> torch.Tensor:
    """mix32 in place: the masks of a wide stack are hundreds of MB, so no temporaries but the
    shifted copies."""
    for _ in range(2):
        x ^= x >> 16
        x *= _MIX
        x &= MASK32
    x ^= x >> 16
    return x


def dropout_key(seed: int, loop: int, step: int) -> int:
    return stream_seed(seed, "dropout", loop, step) & MASK32


def counter_grid(batch: int, units: int, device=None) -> torch.Tensor:
    """mix32 of each (sample position, unit) counter: hashed once, reused every step."""
    counters = torch.arange(batch * units, dtype=torch.int64, device=device).view(batch, units)
    return mix32(counters)


def keep_mask(grid: torch.Tensor, key: torch.Tensor | int, p: float) -> torch.Tensor:
    """True where a unit survives dropout with probability 1 - p. `key` may be a tensor that
    broadcasts against `grid` (one key per trial of a stack)."""
    # uniform = hash / 2**32 >= p, compared in integers: the same decision without a float pass.
    threshold = torch.ceil(p * 2.0**32).to(torch.int64) if torch.is_tensor(p) else math.ceil(p * 2.0**32)
    return _mix32_(grid ^ key) >= threshold
