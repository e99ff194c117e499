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


def shuffle(seed: int, loop: int, n: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """The sample order of meta-loop `loop` (a new shuffle every epoch), in `out` where given."""
    return torch.randperm(n, generator=generator(seed, "shuffle", loop), out=out)


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


def as_int32(x: torch.Tensor) -> torch.Tensor:
    """32-bit values held in int64 as the int32 of the same bits (two's complement)."""
    return x if x.dtype == torch.int32 else torch.where(x >= 2**31, x - 2**32, x).to(torch.int32)


def int32_grid(batch: int, units: int, device=None) -> torch.Tensor:
    """counter_grid as int32, what scaled_keep_masks reads fastest."""
    return as_int32(counter_grid(batch, units, device))


def keep_thresholds(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per trial of dropout probability p: the unsigned 32-bit hash at or above which a unit is
    kept (int64; 2**32 keeps none), and a kept unit's scale 1 / (1 - p) in p's dtype (a mask is
    0 or exactly this)."""
    return torch.ceil(p * 2.0**32).to(torch.int64), torch.ones_like(p) / (1 - p)


def scaled_keep_masks(out: torch.Tensor, grid: torch.Tensor, keys: torch.Tensor, p: torch.Tensor, chunk: int | None):
    """out (trials, batch, units) = keep_mask(grid, keys[t], p[t]) / (1 - p[t]) for every trial t,
    bit for bit, with grid (batch, units) and keys, p (trials,). The hash runs on int32 (half the
    memory traffic of keep_mask's int64; a product wraps as `& MASK32` does, and a right shift
    masked to its 16 low bits is the unsigned one) over blocks of at most `chunk` elements, which a
    CPU then hashes within its cache; None: one block (a GPU, where every block is a kernel)."""
    trials, batch, units = out.shape
    grid, keys = as_int32(grid), as_int32(keys).view(-1, 1, 1)
    thresholds, scales = keep_thresholds(p)
    # Unsigned h >= t is signed (h ^ 2**31 as int32) >= t - 2**31.
    thresholds, scales = (thresholds - 2**31).view(-1, 1, 1), scales.view(-1, 1, 1)
    if chunk is None or trials * batch * units <= chunk:
        block_trials, block_rows = trials, batch
    elif batch * units <= chunk:
        block_trials, block_rows = chunk // (batch * units), batch
    else:
        block_trials, block_rows = 1, max(1, chunk // units)
    size = block_trials * block_rows * units
    x, shifted = torch.empty(2, size, dtype=torch.int32, device=out.device)
    keep = torch.empty(size, dtype=torch.bool, device=out.device)
    for t in range(0, trials, block_trials):
        ts = slice(t, min(t + block_trials, trials))
        for r in range(0, batch, block_rows):
            rows = grid[r : r + block_rows]
            shape = (ts.stop - ts.start, len(rows), units)
            h, s, k = (buffer[: math.prod(shape)].view(shape) for buffer in (x, shifted, keep))
            torch.bitwise_xor(rows, keys[ts], out=h)
            for mix in (_MIX, _MIX, None):
                torch.bitwise_right_shift(h, 16, out=s)
                h ^= s.bitwise_and_(0xFFFF)
                if mix is not None:
                    h *= mix
            h ^= -(2**31)
            torch.mul(torch.ge(h, thresholds[ts], out=k), scales[ts], out=out[ts, r : r + block_rows])
