"""The Frustration Engine: one PSA trial exactly as docs/DESIGN.md section 4 defines it, written
the plain way (one nn.Module, torch.optim.AdamW). It is the reference that the batched engine is
tested against, and what `psa train` runs."""

import copy
import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from psa.progress import Reporter
from psa.trial import ablation, randomness
from psa.trial.data import MNIST
from psa.trial.models import build_model
from psa.trial.spec import BETAS, EPS, LoopRecord, TrialSpec
from psa.trial.topology import topology

EVAL_BATCH = 4096


@dataclass
class TrialState:
    """What survives between meta-loops (and across a resume): the LKG and its scores."""

    lkg: torch.nn.Module
    lkg_score: float = -1.0
    bounty: float = -1.0
    bounty_loop: int = 0
    loops_done: int = 0


def new_state(spec: TrialSpec, device="cpu", dtype=torch.float32) -> TrialState:
    dropout = spec.hyper.dropout if spec.mode == "dropout" else 0.0
    return TrialState(build_model(spec.arch, spec.family, spec.seed, dropout, dtype).to(device))


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum(
        int((model(x[i : i + EVAL_BATCH]).argmax(1) == y[i : i + EVAL_BATCH]).sum())
        for i in range(0, len(x), EVAL_BATCH)
    )
    return 100.0 * correct / len(x)


def train_epoch(model, optimizer, spec: TrialSpec, data: MNIST, loop: int, reporter: Reporter, stop) -> float | None:
    """One epoch: a new shuffle, batches of batch_size with the last partial batch kept, mean
    cross-entropy. Returns the mean of the batches' losses; None if `stop()` asked to end it early."""
    model.train()
    n, size = len(data.x_train), spec.hyper.batch_size
    order = randomness.shuffle(spec.seed, loop, n).to(data.x_train.device)
    total = 0.0  # summed on the device, batch after batch, as the batched engine sums it
    for step, start in enumerate(range(0, n, size)):
        if stop():
            return None
        batch = order[start : start + size]
        model.set_dropout_key(randomness.dropout_key(spec.seed, loop, step))
        loss = F.cross_entropy(model(data.x_train[batch]), data.y_train[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total = total + loss.detach()
        reporter.step()
    return (total / (step + 1)).item()


def run_loops(
    spec: TrialSpec,
    data: MNIST,
    state: TrialState,
    meta_loops: int,
    on_loop=lambda record, state: None,
    reporter: Reporter | None = None,
    stop=lambda: False,
):
    """Run up to `meta_loops` meta-loops on `state`, in place, calling on_loop(record, state) after
    each. Returns the loop records; a loop cut short by `stop()` is discarded, leaving the LKG as
    it was."""
    reporter = reporter or Reporter(live=False, every=math.inf)
    top = topology(spec.arch, spec.family)
    weight_decay = spec.hyper.weight_decay if spec.mode == "decay" else 0.0
    torch.set_flush_denormal(True)  # as the batched engine does (psa.engine.batched.loop.train_stacks)
    records = []
    for _ in range(meta_loops):
        loop = state.loops_done + 1
        active = copy.deepcopy(state.lkg)  # ablations never accumulate: each loop damages a fresh copy
        choice = ablation.choose(spec.mode, top, spec.seed, loop) if loop > 1 else None
        ablation.apply(active.linears, spec.mode, choice)
        optimizer = torch.optim.AdamW(
            active.parameters(), lr=spec.hyper.lr, betas=BETAS, eps=EPS, weight_decay=weight_decay
        )
        loss = train_epoch(active, optimizer, spec, data, loop, reporter, stop)
        if loss is None:
            break
        score = accuracy(active, data.x_val, data.y_val)
        improved = score > state.lkg_score
        if improved:
            state.lkg, state.lkg_score = active, score
            if score > state.bounty:
                state.bounty, state.bounty_loop = score, loop
        state.loops_done = loop
        record = LoopRecord(loop, score, state.lkg_score, state.bounty, improved, ablation.describe(choice), loss)
        records.append(record)
        on_loop(record, state)
        reporter.loop_done(loop)
    return records
