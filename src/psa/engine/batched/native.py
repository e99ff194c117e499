"""SimpleMLP stacks whose hidden layers share one width (Layout.fused_width) on a CPU, fused:
chain.cpp, compiled by the system's C++ compiler once per machine and width (a second or two
each) into psa's cache folder and called through ctypes, runs a training step of every trial in
one call instead of a dozen framework operations per layer: a block of samples goes through
hidden layer 0, which reads them from the training set in place (Rows: no gathered copy of the
batch; in float32 the uint8 pixels, a quarter of the bytes, normalised in its sums), every later
layer, the loss and back to hidden layer 0's gradients while it stays in the core's cache, the
dropout masks drawn inside. Only AdamW stays torch's. gradients() has ops.gradients' interface,
forward() gives ops.forward's logits.

The math is ops'; only the summation order inside each product and the exponential's
rounding differ, and where pixels are read, the normalisation moves from the inputs into hidden
layer 0's sums (tests/test_native.py: float64 agreement; the dropout masks are bit for bit the
same). Each trial runs on one of torch's OpenMP threads, whichever is free, so its result does
not depend on the thread count. Where no compiler is found, or PSA_FUSED=0, these stacks train
on ops' eager path, and engine_version says which arithmetic a sweep records."""

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from psa.engine.batched import ops
from psa.engine.batched.stack import Layout, Stack
from psa.files import cache_dir, write_atomic
from psa.trial.architecture import OUTPUTS

# Results of a fixed seed change when the float32 arithmetic order changes: the store records the
# version that began each trial, and a resume under another is refused (psa.sweeps.grid.check_engine).
# Version 4 is these stacks fused on a CPU, hidden layer 0 reading the training set's pixels, each
# multiply-add written so that it fuses one way only (version 3 left the compiler a choice, which
# depended on the CPU and the width; version 2 read normalised images); elsewhere (a GPU, no C++
# compiler, PSA_FUSED=0) psa computes as version 1 did and records 1 (engine_version).
ENGINE_VERSION = 4

SOURCE = Path(__file__).with_name("chain.cpp")
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-std=c++17", "-fopenmp", "-shared", "-fPIC")


def _cpu_features() -> str:
    """What -march=native compiles for: a cached library must not reach another CPU model (a
    shared home folder on a cluster)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return next((line for line in info.splitlines() if line.startswith(("flags", "Features"))), "")


def _build(compiler: str, width: int) -> Path:
    flags = (*FLAGS, f"-DPSA_WIDTH={width}")
    key = hashlib.sha256("\0".join([SOURCE.read_text(), compiler, *flags, _cpu_features()]).encode()).hexdigest()
    target = cache_dir("native") / f"chain-{width}-{key[:16]}.so"
    if not target.exists():
        write_atomic(
            target,
            lambda tmp: subprocess.run(
                [compiler, *flags, str(SOURCE), "-o", str(tmp)], check=True, capture_output=True, text=True
            ),
        )
    return target


@functools.cache
def compiler() -> str | None:
    """The C++ compiler that builds chain.cpp, or None (PSA_FUSED=0, or none found: said once)."""
    if os.environ.get("PSA_FUSED", "1") == "0":
        return None
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++"]
    found = next((path for path in map(shutil.which, names) if path), None)
    if found is None:
        print(
            f"psa: no C++ compiler ({' or '.join(names)}): narrow stacks train on the slower eager path",
            file=sys.stderr,
        )
    return found


@functools.cache
def library(width: int) -> ctypes.CDLL | None:
    """chain.cpp built for hidden layers `width` wide (a second or two, once per machine), or None
    where compiler() is None or the build fails (said once per width)."""
    if compiler() is None:
        return None
    try:
        lib = ctypes.CDLL(str(_build(compiler(), width)))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        reason = next((line for line in detail.splitlines() if "error" in line), detail.strip())
        print(
            f"psa: building {SOURCE.name} failed ({reason}): narrow stacks train on the slower eager path",
            file=sys.stderr,
        )
        return None
    integer, long, pointer, double = ctypes.c_int, ctypes.c_long, ctypes.c_void_p, ctypes.c_double
    lib.psa_run.restype = integer
    lib.psa_run.argtypes = [integer] * 7 + [pointer] * 2 + [integer, long, integer, double, double]
    lib.psa_run.argtypes += [pointer, pointer, integer] + [pointer] * 3 + [long]  # logits .. stride
    lib.psa_run.argtypes += [pointer] * 2 + [long, integer, integer, pointer]
    lib.psa_keep_masks.restype = None
    lib.psa_keep_masks.argtypes = [integer] * 3 + [long] * 3 + [pointer, pointer, integer, pointer]
    return lib


def build(widths: set[int]) -> None:
    """The libraries of these widths, and of width 1 (engine_version's), built side by side where
    not yet: a first run builds a few, a few seconds each, before its first step."""
    if compiler() is None:
        return
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(library, sorted(widths | {1})))


def _computes(stack: Stack) -> bool:
    """Whether chain.cpp computes in this stack's dtype on its device."""
    return stack.active.device.type == "cpu" and stack.active.dtype in (torch.float32, torch.float64)


def supported(stack: Stack) -> bool:
    """Whether this stack's steps run through chain.cpp (native.gradients)."""
    width = stack.layout.fused_width
    return _computes(stack) and width is not None and library(width) is not None


def draws_masks(stack: Stack) -> bool:
    """Whether chain.cpp draws this stack's dropout masks where it trains on ops (keep_masks)."""
    return _computes(stack) and library(1) is not None


def fuses(layout: Layout) -> bool:
    """Whether a CPU stack of this layout trains here, by what supported() would say, before any
    library is built."""
    return layout.fused_width is not None and compiler() is not None


def engine_version(device: torch.device | str) -> int:
    """The engine version a sweep on `device` records: ENGINE_VERSION on a CPU with the fused
    kernels (where the narrowest builds, so do the others), else 1, whose arithmetic psa computes
    there unchanged."""
    return ENGINE_VERSION if torch.device(device).type == "cpu" and library(1) is not None else 1


@dataclass(frozen=True)
class Rows:
    """A batch's inputs as rows of a matrix, which chain.cpp reads in place: trial t's sample s is
    data[index[t % len(index), s]]. While training in float32, `data` is the training set's uint8
    pixels and `normalise` the (scale, shift) that makes them inputs (psa.trial.data.NORMALISE);
    else `data` holds the inputs themselves, such as the training set's. `labels`, where given, are
    the rows' labels, which a training step then reads through index as well: gathering a step's
    labels into a (T, B) tensor first took 8% of a 16*2 step on 2 cores."""

    data: torch.Tensor  # (N, inputs), rows contiguous
    index: torch.Tensor  # (orders, B) int64, rows contiguous (a slice of the epoch's sample orders)
    normalise: tuple[float, float] | None = None
    labels: torch.Tensor | None = None  # (N,) int64
    vectors: torch.Tensor | None = None  # (N,) int64 of pixel rows: pixel_vectors(data)

    @classmethod
    def of(cls, x: "torch.Tensor | Rows") -> "Rows":
        """x (T or G, B, inputs) as ops.linear reads it, an expanded one (stride 0) as one order."""
        if isinstance(x, Rows):
            return x
        x = x[:1] if x.stride(0) == 0 else x
        index = torch.arange(x.shape[0] * x.shape[1], device=x.device).view(x.shape[:2])
        return cls(x.reshape(-1, x.shape[2]).contiguous(), index)


VECTOR = 16  # pixels in a bit of pixel_vectors: a vector of float32


def pixel_vectors(pixels: torch.Tensor) -> torch.Tensor:
    """(N,) int64 of uint8 rows (N, inputs): bit v set where pixels VECTOR v .. VECTOR (v + 1) - 1
    are not all 0. Hidden layer 0 skips the vectors that all the rows of a register block have 0
    (42% of MNIST's, one by one): they add exactly nothing to its sums (chain.cpp, live_vectors)."""
    count = pixels.shape[1] // VECTOR
    assert count <= 63, "a row's vectors fit an int64"
    words = pixels[:, : count * VECTOR].contiguous().view(torch.int64)  # 8 pixels each: 10x quicker
    live = words.view(len(pixels), count, VECTOR // 8).ne(0).any(2)
    return (live.long() << torch.arange(count)).sum(1)


@dataclass(frozen=True)
class Dropout:
    """A step's dropout masks as chain.cpp draws them, bit for bit as step.dropout_masks would from
    the same arguments of psa.trial.randomness.scaled_keep_masks, one per dropout trial."""

    keys: torch.Tensor  # int64, the step's key of each dropout trial
    p: torch.Tensor  # their dropout probabilities, the stack's dtype


def dropout(stack: Stack, grid: torch.Tensor, keys: torch.Tensor, batch: int, out=None) -> Dropout:
    """step.dropout_masks for the chain: no masks are made here; chain.cpp hashes each (sample,
    unit) counter itself rather than read `grid`, the cache of those hashes."""
    return Dropout(keys.view(-1), stack.drop_p.view(-1))


def keep_masks(stack: Stack, grid: torch.Tensor, keys: torch.Tensor, batch: int, out=None):
    """step.dropout_masks of a CPU stack that trains on ops, bit for bit, as ops reads them
    (ops.units_of): a function of (first unit, stop) that hashes those units' masks (dropout
    trials, batch, stop - first) into `out`, the same memory each call, which ops multiplies
    before the next. A layer's masks drawn where they are used stay in the cache; a step's drawn
    at once by a dozen framework operations (135 MB for 115*115) were 9-16% of a deep square's
    step (docs/PERFORMANCE.md). chain.cpp hashes each (sample, unit) counter itself rather than
    read `grid`."""
    trials, units = len(stack.specs[stack.drop]), grid.shape[1]
    keys, p = keys.reshape(-1).contiguous(), stack.drop_p.reshape(-1).contiguous()
    assert keys.dtype == torch.int64 and len(keys) == len(p) == trials and p.dtype == stack.active.dtype
    out = torch.empty(trials * batch * units, dtype=p.dtype) if out is None else out

    def masks(first: int, stop: int) -> torch.Tensor:
        assert 0 <= first <= stop <= units
        view = out[: trials * batch * (stop - first)].view(trials, batch, stop - first)
        library(1).psa_keep_masks(
            p.element_size(),
            trials,
            batch,
            units,
            first,
            stop - first,
            keys.data_ptr(),
            p.data_ptr(),
            torch.get_num_threads(),
            _pointer(view),
        )
        return view

    return masks


def _pointer(tensor: torch.Tensor | None) -> int | None:
    assert tensor is None or tensor.is_contiguous()
    return None if tensor is None else tensor.data_ptr()


def _run(stack: Stack, rows: Rows, flat: torch.Tensor, logits=None, drop: Dropout | None = None, step=None):
    """One call of chain.cpp over every trial of the stack with the parameters in `flat`: the
    logits, written where given. A training step, step = (labels, loss or None), goes on: each
    trial's batch-mean loss added to loss, and every layer's gradients into stack.grad."""
    layout, width = stack.layout, stack.layout.fused_width
    labels, loss = step or (None, None)
    row_labels = step is not None and labels is None  # the rows' own, read through the index
    assert rows.data.is_contiguous() and rows.index.stride(1) == 1 and flat.stride(1) == 1
    assert rows.data.dtype == (torch.uint8 if rows.normalise else flat.dtype)
    assert layout.shapes[0] == (rows.data.shape[1], width) and layout.shapes[-1] == (width, OUTPUTS)
    if row_labels:
        labels = rows.labels
        assert labels is not None and labels.shape == rows.data.shape[:1] and labels.dtype == torch.int64
    else:
        assert labels is None or (labels.shape == (flat.shape[0], rows.index.shape[1]) and labels.dtype == torch.int64)
    assert rows.vectors is None or (rows.vectors.shape == rows.data.shape[:1] and rows.vectors.dtype == torch.int64)
    scale, shift = rows.normalise or (1.0, 0.0)
    dropping = stack.drop if drop is not None else slice(0, 0)
    status = library(width).psa_run(
        flat.element_size(),
        int(rows.normalise is not None),
        width,
        flat.shape[0],
        len(layout.topology.sequence) - 1,
        rows.index.shape[1],
        torch.get_num_threads(),
        rows.data.data_ptr(),
        rows.index.data_ptr(),
        rows.index.shape[0],
        rows.index.stride(0),
        rows.data.shape[1],
        scale,
        shift,
        _pointer(logits),
        _pointer(labels),
        int(row_labels),
        _pointer(loss),
        flat.data_ptr(),
        stack.grad.data_ptr(),
        flat.stride(0),
        *((None, None) if drop is None else (_pointer(drop.keys), _pointer(drop.p))),
        layout.topology.dropout_units,
        dropping.start,
        dropping.stop,
        _pointer(rows.vectors),
    )
    assert status == 0, f"chain.cpp's library for width {width} computes another"


def forward(stack: Stack, x: "torch.Tensor | Rows", drop: Dropout | None = None, flat=None) -> torch.Tensor:
    """The logits (T, B, 10) of ops.forward, with the parameters in `flat` (default: the active ones)."""
    flat = stack.active if flat is None else flat
    rows = Rows.of(x)
    logits = flat.new_empty(flat.shape[0], rows.index.shape[1], OUTPUTS)
    _run(stack, rows, flat, logits, drop)
    return logits


def gradients(
    stack: Stack, x: "torch.Tensor | Rows", y: torch.Tensor | None, drop: Dropout | None = None, loss=None, logits=None
):
    """ops.gradients for a stack with a chain: the step's gradients into stack.grad, each trial's
    batch-mean loss added to `loss` (T,) where given, the logits written into `logits` where given.
    y: the labels (T, B), or None where x is Rows that carry their rows' labels."""
    _run(stack, Rows.of(x), stack.active, logits, drop, (y, loss))


@torch.no_grad()
def accuracy(stack: Stack, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000) -> list[float]:
    """ops.accuracy through the chain where the stack has one."""
    if not supported(stack):
        return ops.accuracy(stack, flat, x, y, chunk)
    return ops.accuracy(stack, flat, x, y, chunk, logits_of=lambda xb: forward(stack, xb, flat=flat))
