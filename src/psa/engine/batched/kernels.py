"""Fused Triton kernels for the narrow hidden chains of SimpleMLP stacks (2048*1, 939*2, 18*18...).

Eagerly, every hidden layer of such a stack costs a dozen tiny kernels per training step, and a
2048-layer stack spends its time launching them. Here one program carries a block of samples of
one trial through all the W -> W hidden layers with its activations in registers (forward), and
back through them (backward), so the chain is one launch each way whatever its depth. The first
layer (784 -> W) and the output layer (W -> 10) stay batched matmuls in torch.

The math is psa.engine.batched.ops.forward / backward's: same dropout masks (the scaled keep-masks are
read, not redrawn), same ReLU and mask order, gradients of the mean loss. Only the summation order
inside each small matrix product differs. Weight gradients are written as per-block partial sums
and reduced in torch, so results are deterministic (no atomics).

Without CUDA the kernels run under Triton's interpreter (TRITON_INTERPRET=1, set before triton is
imported), which is how the CPU tests check them."""

import os

import torch

from psa.engine.batched import ops
from psa.engine.batched.stack import Stack

try:
    import triton
    import triton.language as tl
except ImportError:  # the fused path is optional: everything falls back to ops.forward/backward
    triton = None


def available(device: torch.device) -> bool:
    """Whether the kernels can run on `device` (CUDA, or CPU under Triton's interpreter)."""
    if triton is None:
        return False
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def supported(stack: Stack) -> bool:
    return available(stack.active.device) and stack.layout.chain_width is not None


def _config(width: int, dtype: torch.dtype) -> dict:
    """Block shapes: tl.dot (tensor cores, sizes >= 16) for float32 chains wider than 8, else
    broadcast-multiply-sum on CUDA cores, with the (block, width, width) product kept small enough
    to stay in registers."""
    padded = triton.next_power_of_2(width)
    if dtype == torch.float32 and width > 8:
        return {"BW": max(padded, 16), "BB": 32, "DOT": True, "num_warps": 4}
    block = max(4, min(32, 2048 // (padded * padded)))
    return {"BW": padded, "BB": block, "DOT": False, "num_warps": max(1, min(4, block * padded * padded // 512))}


if triton is not None:

    @triton.jit
    def _times_wt(h, w, DOT: tl.constexpr, PRECISION: tl.constexpr):
        """h @ w^T: (BB, in) x (out, in) -> (BB, out)."""
        if DOT:
            return tl.dot(h, tl.trans(w), input_precision=PRECISION)
        return tl.sum(h[:, None, :] * w[None, :, :], axis=2)

    @triton.jit
    def _times_w(g, w, DOT: tl.constexpr, PRECISION: tl.constexpr):
        """g @ w: (BB, out) x (out, in) -> (BB, in)."""
        if DOT:
            return tl.dot(g, w, input_precision=PRECISION)
        return tl.sum(g[:, :, None] * w[None, :, :], axis=1)

    @triton.jit
    def _gt_times(g, x, DOT: tl.constexpr, PRECISION: tl.constexpr):
        """g^T @ x: (BB, out) x (BB, in) -> (out, in), summed over the block's samples."""
        if DOT:
            return tl.dot(tl.trans(g), x, input_precision=PRECISION)
        return tl.sum(g[:, :, None] * x[:, None, :], axis=0)

    @triton.jit
    def _chain_forward(
        src,
        dst,
        chain,
        masks,
        n_layers,
        batch,
        src_stride,
        dst_stride,
        param_stride,
        units,
        drop_lo,
        drop_hi,
        W,
        BW: tl.constexpr,
        BB: tl.constexpr,
        DOT: tl.constexpr,
        DROPOUT: tl.constexpr,
        STORE: tl.constexpr,
        PRECISION: tl.constexpr,
    ):
        """src (T, B, W): output of hidden layer 0. With STORE, dst[t, l] receives the output of
        hidden layer l + 1 for every l (the tape backward reads); else dst[t, 0] the last one."""
        t = tl.program_id(0)
        rows = tl.program_id(1) * BB + tl.arange(0, BB)
        cols = tl.arange(0, BW)
        inside = (rows < batch)[:, None] & (cols < W)[None, :]
        square = (cols < W)[:, None] & (cols < W)[None, :]
        here = rows[:, None] * W + cols[None, :]
        dropping = (t >= drop_lo) & (t < drop_hi)
        h = tl.load(src + t * src_stride + here, mask=inside, other=0.0)
        for li in range(n_layers):
            layer = chain + t * param_stride + li * (W * W + W)
            w = tl.load(layer + cols[:, None] * W + cols[None, :], mask=square, other=0.0)
            b = tl.load(layer + W * W + cols, mask=cols < W, other=0.0)
            h = tl.maximum(_times_wt(h, w, DOT, PRECISION) + b[None, :], 0.0)
            if DROPOUT:
                keep = tl.load(
                    masks + ((t - drop_lo) * batch + rows[:, None]) * units + (li + 1) * W + cols[None, :],
                    mask=inside & dropping,
                    other=1.0,
                )
                h = h * keep
            if STORE:
                tl.store(dst + t * dst_stride + li * batch * W + here, h, mask=inside)
        if not STORE:
            tl.store(dst + t * dst_stride + here, h, mask=inside)

    @triton.jit
    def _chain_backward(
        grad,
        acts,
        chain,
        masks,
        partial,
        n_layers,
        batch,
        param_stride,
        units,
        drop_lo,
        drop_hi,
        W,
        BW: tl.constexpr,
        BB: tl.constexpr,
        DOT: tl.constexpr,
        DROPOUT: tl.constexpr,
        PRECISION: tl.constexpr,
    ):
        """grad (T, B, W): in, d loss / d output of the last hidden layer; out, d loss / d output
        of hidden layer 0. acts (T, n_layers + 1, B, W): every hidden layer's output. partial
        (T, blocks, n_layers, W * W + W): this block's share of each chain layer's dW and db."""
        t = tl.program_id(0)
        block = tl.program_id(1)
        rows = block * BB + tl.arange(0, BB)
        cols = tl.arange(0, BW)
        inside = (rows < batch)[:, None] & (cols < W)[None, :]
        square = (cols < W)[:, None] & (cols < W)[None, :]
        here = rows[:, None] * W + cols[None, :]
        plane = batch * W
        dropping = (t >= drop_lo) & (t < drop_hi)
        g = tl.load(grad + t * plane + here, mask=inside, other=0.0)
        for i in range(n_layers):
            hl = n_layers - i  # hidden layer hl, parameters of chain layer hl - 1
            h = tl.load(acts + (t * (n_layers + 1) + hl) * plane + here, mask=inside, other=0.0)
            x = tl.load(acts + (t * (n_layers + 1) + hl - 1) * plane + here, mask=inside, other=0.0)
            if DROPOUT:
                keep = tl.load(
                    masks + ((t - drop_lo) * batch + rows[:, None]) * units + hl * W + cols[None, :],
                    mask=inside & dropping,
                    other=1.0,
                )
                g = g * keep
            # A kept unit's output is positive exactly where its pre-activation is; a dropped
            # unit's gradient is already zero.
            g = tl.where(h > 0, g, 0.0)
            out = partial + ((t * tl.num_programs(1) + block) * n_layers + hl - 1) * (W * W + W)
            tl.store(out + cols[:, None] * W + cols[None, :], _gt_times(g, x, DOT, PRECISION), mask=square)
            tl.store(out + W * W + cols, tl.sum(g, axis=0), mask=cols < W)
            layer = chain + t * param_stride + (hl - 1) * (W * W + W)
            w = tl.load(layer + cols[:, None] * W + cols[None, :], mask=square, other=0.0)
            g = _times_w(g, w, DOT, PRECISION)
        tl.store(grad + t * plane + here, g, mask=inside)


def _dropout_args(stack: Stack, masks, fallback: torch.Tensor):
    if masks is None:
        return fallback, 0, 0, 0, False
    return masks, stack.layout.topology.dropout_units, stack.drop.start, stack.drop.stop, True


def _precision(dtype: torch.dtype, tf32: bool) -> str:
    return "tf32" if tf32 and dtype == torch.float32 else "ieee"


def forward(stack: Stack, x: torch.Tensor, masks=None, flat=None, tape: bool = True, tf32: bool = False):
    """ops.forward for a fusable SimpleMLP stack, with the parameters in `flat` (default:
    stack.active). The tape holds every hidden layer's output; `tape=False` (evaluation) keeps
    only the last one."""
    flat = stack.active if flat is None else flat
    layout = stack.layout
    weights = layout.views(flat)
    trials, size, width = flat.shape[0], x.shape[1], layout.chain_width  # x may be shared (Stack.share_inputs)
    n_layers = len(layout.topology.sequence) - 1
    first = torch.relu(ops.linear(x, *weights[0])).to(flat.dtype)  # autocast may give bf16
    if masks is not None:
        first[stack.drop] *= masks[:, :, :width]
    config = _config(width, flat.dtype)
    planes = n_layers + 1 if tape else 1
    assert trials * planes * size * width < 2**31, "the kernels index with 32-bit offsets"
    if tape:
        acts = x.new_empty(trials, n_layers + 1, size, width)
        acts[:, 0] = first
        src, dst = acts[:, 0], acts[:, 1:]
    else:
        src = first.contiguous()  # a shared first layer leaves it permuted; the kernel reads rows
        acts, dst = None, torch.empty_like(src)
    masks_arg, units, lo, hi, dropout = _dropout_args(stack, masks, src)
    grid = (trials, triton.cdiv(size, config["BB"]))
    _chain_forward[grid](
        src,
        dst,
        weights[1][0],
        masks_arg,
        n_layers,
        size,
        src.stride(0),
        dst.stride(0),
        flat.stride(0),
        units,
        lo,
        hi,
        W=width,
        DROPOUT=dropout,
        STORE=tape,
        PRECISION=_precision(flat.dtype, tf32),
        **config,
    )
    last = acts[:, -1] if tape else dst
    return ops.linear(last, *weights[-1]), last, (x, acts)


def backward(stack: Stack, g: torch.Tensor, last: torch.Tensor, tape, masks=None, tf32: bool = False) -> None:
    """ops.backward for a stack run through forward() above: gradients into stack.grad."""
    x, acts = tape
    layout, weights = stack.layout, stack.weights
    trials, size, width = g.shape[0], g.shape[1], layout.chain_width
    n_layers = len(layout.topology.sequence) - 1
    ops.layer_grads(stack, len(weights) - 1, g, last)
    g = torch.bmm(g, weights[-1][0]).to(acts.dtype)
    config = _config(width, stack.active.dtype)
    blocks = triton.cdiv(size, config["BB"])
    partial = g.new_empty(trials, blocks, n_layers, width * width + width)
    masks_arg, units, lo, hi, dropout = _dropout_args(stack, masks, g)
    _chain_backward[(trials, blocks)](
        g,
        acts,
        weights[1][0],
        masks_arg,
        partial,
        n_layers,
        size,
        stack.active.stride(0),
        units,
        lo,
        hi,
        W=width,
        DROPOUT=dropout,
        PRECISION=_precision(stack.active.dtype, tf32),
        **config,
    )
    stack.grad[:, layout.offsets[1] : layout.offsets[-1]].copy_(partial.sum(1).view(trials, -1))
    if masks is not None:
        g[stack.drop] *= masks[:, :, :width]
    g = g * (acts[:, 0] > 0).to(g.dtype)
    ops.layer_grads(stack, 0, g, x)
