"""A stack: many trials of one architecture held as one computation. Every trial's parameters
live in one row of a flat (trials, P) buffer, and every linear layer's weight and bias are views
into it, so AdamW, LKG promotion and ablation are a handful of operations on whole buffers
whatever the depth. Each trial keeps its own seed, data order, dropout, weight decay, LKG and
scores, and follows docs/DESIGN.md section 4 as if it ran alone (tests/test_batched.py)."""

import functools
from dataclasses import dataclass, field

import torch

from psa.trial import ablation
from psa.trial.architecture import INPUTS, Architecture
from psa.trial.models import initial_parameters
from psa.trial.spec import LoopRecord, Progress, TrialSpec
from psa.trial.topology import Topology, topology

CHAIN_MAX_WIDTH = 32  # wider layers already keep the machine busy with batched matmuls


@dataclass(frozen=True)
class Layout:
    """Where each linear layer's weight (out, in) and bias sit in a flat parameter row: the
    weight at offsets[l], its bias right after it."""

    topology: Topology
    offsets: tuple[int, ...]
    size: int

    @classmethod
    @functools.cache
    def of(cls, arch: Architecture, family: str) -> "Layout":
        top = topology(arch, family)
        offsets, size = [], 0
        for fan_in, fan_out in top.shapes:
            offsets.append(size)
            size += (fan_in + 1) * fan_out
        return cls(top, tuple(offsets), size)

    @property
    def fused_width(self) -> int | None:
        """The common width of a SimpleMLP's hidden layers where it is at most CHAIN_MAX_WIDTH:
        the CPU's fused kernels run them (psa.engine.batched.native); else None."""
        widths = {fan_out for _, fan_out in self.shapes[:-1]}
        if self.topology.family != "simplemlp" or len(widths) != 1:
            return None
        width = widths.pop()
        return width if width <= CHAIN_MAX_WIDTH else None

    @property
    def chain_width(self) -> int | None:
        """fused_width where the hidden layers form a chain of two or more, which the GPU's fused
        kernels run (psa.engine.batched.kernels); else None."""
        return self.fused_width if len(self.shapes) > 2 else None

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        return self.topology.shapes

    def view(self, flat: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear layer `layer`'s (weight (T, out, in), bias (T, out)) views of a flat (T, P) buffer."""
        (fan_in, fan_out), start = self.shapes[layer], self.offsets[layer]
        weight = flat[:, start : start + fan_in * fan_out].view(-1, fan_out, fan_in)
        return weight, flat[:, start + fan_in * fan_out : start + (fan_in + 1) * fan_out]

    def views(self, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[view(flat, layer)] of every layer."""
        return [self.view(flat, layer) for layer in range(len(self.shapes))]

    def neuron_indices(self, mode: str, layer: int, unit: int) -> torch.Tensor:
        """Flat positions that ablating (layer, unit) zeroes: its incoming row and bias, plus in
        `hidden` mode its outgoing column in the next layer."""
        fan_in, fan_out = self.shapes[layer]
        start = self.offsets[layer]
        parts = [
            torch.arange(start + unit * fan_in, start + (unit + 1) * fan_in),
            torch.tensor([start + fan_in * fan_out + unit]),
        ]
        if mode == "hidden":
            next_in, next_out = self.shapes[layer + 1]
            parts.append(self.offsets[layer + 1] + torch.arange(next_out) * next_in + unit)
        return torch.cat(parts)

    def memory_per_trial(self, batch: int, eval_batch: int, itemsize: int) -> int:
        """Bytes one trial of the stack needs: parameters, gradients, AdamW moments and LKG,
        the activations a training step keeps for backward, and an evaluation chunk."""
        widest = max(fan_out for _, fan_out in self.shapes)
        kept = INPUTS + 3 * sum(fan_out for _, fan_out in self.shapes) + 2 * self.topology.dropout_units
        return itemsize * (5 * self.size + batch * kept + eval_batch * (INPUTS + 2 * widest))


def _span(rows: list[int]) -> slice | None:
    return slice(rows[0], rows[-1] + 1) if rows else None


@dataclass(eq=False)
class Stack:
    """The state of a stack of trials between and during meta-loops. Build one with Stack.of."""

    specs: list[TrialSpec]  # in stack order (grouping.order_specs)
    layout: Layout
    lkg: torch.Tensor  # (T, P) every trial's Last Known Good parameters
    active: torch.Tensor  # (T, P) this loop's candidates, trained in place
    grad: torch.Tensor  # (T, P) gradients of the current step
    lkg_score: list[float]
    bounty: list[float]
    bounty_loop: list[int]
    # AdamW's decoupled weight decay multiplies a decay trial's row by `shrink` = 1 - lr * wd,
    # rounded to the dtype as torch rounds a Python scalar. With the study's lr = wd = 1e-4 that
    # is exactly 1 in float32 (decay then trains as none does, in torch's AdamW as here), so only
    # rows that really shrink are touched: the span `decaying`, kept contiguous by order_specs.
    decaying: slice | None
    shrink: torch.Tensor | None  # (rows of decaying, 1)
    drop: slice | None  # the dropout trials' rows, contiguous (order_specs)
    drop_p: torch.Tensor | None  # (dropout trials, 1, 1)
    # Sample orders: one per distinct seed when trial i has the (i mod G)-th seed, else one per
    # trial; fan_out maps each trial to its order's row. Trials that share an order then share
    # their input batch through the first layer, without a per-trial copy of it, which pays where
    # that layer is narrower than a batch.
    seeds: list[int]
    fan_out: torch.Tensor
    share_inputs: bool
    weights: list = field(init=False)  # views of active, per layer (Layout.views)
    grads: list = field(init=False)  # views of grad

    def __post_init__(self):
        self.weights, self.grads = self.layout.views(self.active), self.layout.views(self.grad)

    @classmethod
    def of(cls, specs: list[TrialSpec], device, dtype, saved: dict[TrialSpec, Progress] | None = None) -> "Stack":
        """The trials in the given order: each from its `saved` state if given, else fresh (its
        seeded initial weights as LKG)."""
        arch, family = specs[0].arch, specs[0].family
        layout, saved = Layout.of(arch, family), saved or {}
        rows = [
            torch.from_numpy(saved[s].lkg).to(dtype)
            if s in saved
            else torch.cat([torch.cat([w.reshape(-1), b]) for w, b in initial_parameters(arch, family, s.seed, dtype)])
            for s in specs
        ]
        lkg = torch.stack(rows).to(device)
        column = lambda values: torch.tensor(values, dtype=dtype, device=device).view(-1, 1)  # noqa: E731
        lr = specs[0].hyper.lr
        shrink = column([1 - lr * s.hyper.weight_decay if s.mode == "decay" else 1.0 for s in specs])
        decaying = _span((shrink != 1).view(-1).nonzero().view(-1).tolist())
        dropping = [i for i, s in enumerate(specs) if s.mode == "dropout"]
        seeds = sorted({s.seed for s in specs})
        regular = len(specs) % len(seeds) == 0 and all(s.seed == seeds[i % len(seeds)] for i, s in enumerate(specs))
        seeds = seeds if regular else [s.seed for s in specs]
        sequence, shapes = layout.topology.sequence, layout.shapes
        first_layer_narrow = sequence[0][0] == "linear" and shapes[0][1] <= specs[0].hyper.batch_size
        return cls(
            specs,
            layout,
            lkg,
            lkg.clone(),
            torch.zeros_like(lkg),
            lkg_score=[saved[s].lkg_score if s in saved else -1.0 for s in specs],
            bounty=[saved[s].bounty if s in saved else -1.0 for s in specs],
            bounty_loop=[saved[s].bounty_loop if s in saved else 0 for s in specs],
            decaying=decaying,
            shrink=shrink[decaying] if decaying else None,
            drop=_span(dropping),
            drop_p=column([specs[i].hyper.dropout for i in dropping]).view(-1, 1, 1) if dropping else None,
            seeds=seeds,
            fan_out=torch.arange(len(specs), device=device) % len(seeds),
            share_inputs=regular and first_layer_narrow,
        )


def ablate(stack: Stack, loop: int) -> list:
    """Zero one neuron per ablative trial in the active buffer; returns each trial's choice."""
    choices, rows, cols = [], [], []
    for t, spec in enumerate(stack.specs):
        choice = ablation.choose(spec.mode, stack.layout.topology, spec.seed, loop)
        choices.append(choice)
        if choice is not None:
            idx = stack.layout.neuron_indices(spec.mode, *choice)
            rows.append(torch.full_like(idx, t))
            cols.append(idx)
    if rows:
        device = stack.active.device
        stack.active[torch.cat(rows).to(device), torch.cat(cols).to(device)] = 0
    return choices


def promote(stack: Stack, loop: int, scores: list[float], choices: list, losses: list[float]) -> list[LoopRecord]:
    """Make each candidate that beats its trial's LKG score the new LKG; the loop's records."""
    improved = [score > best for score, best in zip(scores, stack.lkg_score)]
    if any(improved):  # row indices known on the host: no device sync, unlike a boolean mask
        rows = torch.tensor([t for t, better in enumerate(improved) if better], device=stack.lkg.device)
        stack.lkg.index_copy_(0, rows, stack.active.index_select(0, rows))
    records = []
    for t in range(len(stack.specs)):
        if improved[t]:
            stack.lkg_score[t] = scores[t]
            if scores[t] > stack.bounty[t]:
                stack.bounty[t], stack.bounty_loop[t] = scores[t], loop
        records.append(
            LoopRecord(
                loop,
                scores[t],
                stack.lkg_score[t],
                stack.bounty[t],
                improved[t],
                ablation.describe(choices[t]),
                losses[t],
            )
        )
    return records
