"""The batched engine: many trials of one architecture trained together as one stacked
computation. Every trial keeps its own weights (a leading trial dimension), data order, ablation,
dropout masks, weight decay, LKG and fresh AdamW state, and follows DESIGN.md section 4 exactly
as if it ran alone in psa.engine (tests/test_batched.py checks this in float64).

Layout: all parameters of a trial live in one row of a flat (trials, P) buffer; every layer's
weight and bias are views into it. AdamW, LKG promotion and ablation are then a handful of
operations on whole buffers, whatever the depth, and forward and backward are written out by hand
(batched matmuls), so a 2048-layer stack costs a few operations per layer, not a few per layer
and trial."""

import time
from dataclasses import dataclass

import torch

from psa import ablation, randomness
from psa.architecture import INPUTS, Architecture, linear_shapes
from psa.data import MNIST
from psa.models import initial_parameters
from psa.modes import MODES
from psa.trial import LoopRecord, TrialResult, TrialSpec

BETAS, EPS = (0.9, 0.999), 1e-8


@dataclass
class Layout:
    """Where each linear layer's weight and bias sit in a flat parameter row, and the
    compute plan (SimpleMLP: a chain; ResMLP: transitions and residual blocks)."""

    family: str
    shapes: list[tuple[int, int]]  # (fan_in, fan_out) per linear, compute order
    offsets: list[int]  # start of each layer's weight; its bias follows the weight
    size: int
    plan: list[tuple[str, int]]  # ("linear", l) hidden layer, ("block", l) uses l and l+1
    dropout_offsets: list[int]  # unit offset of each dropout point, in plan order
    dropout_units: int

    @classmethod
    def of(cls, arch: Architecture, family: str) -> "Layout":
        shapes = linear_shapes(arch, family)
        offsets, size = [], 0
        for fan_in, fan_out in shapes:
            offsets.append(size)
            size += (fan_in + 1) * fan_out
        if family == "simplemlp":
            plan = [("linear", l) for l in range(len(shapes) - 1)]
        else:
            plan, l, current = [], 0, INPUTS
            for count, width in arch.segments:
                if width != current:
                    plan.append(("linear", l))
                    l, current = l + 1, width
                for _ in range(count):
                    plan.append(("block", l))
                    l += 2
        widths = [shapes[l][1] for _, l in plan]
        dropout_offsets = [sum(widths[:k]) for k in range(len(widths))]
        return cls(family, shapes, offsets, size, plan, dropout_offsets, sum(widths))

    def views(self, flat: torch.Tensor):
        """[(weight (T, out, in), bias (T, out))] views of a flat (T, P) buffer."""
        out = []
        for (fan_in, fan_out), start in zip(self.shapes, self.offsets):
            weight = flat[:, start : start + fan_in * fan_out].view(-1, fan_out, fan_in)
            bias = flat[:, start + fan_in * fan_out : start + (fan_in + 1) * fan_out]
            out.append((weight, bias))
        return out

    def neuron_indices(self, mode: str, layer: int, unit: int) -> torch.Tensor:
        """Flat positions that ablating (layer, unit) zeroes: its incoming row and bias, plus in
        `hidden` mode its outgoing column in the next layer."""
        fan_in, fan_out = self.shapes[layer]
        start = self.offsets[layer]
        parts = [torch.arange(start + unit * fan_in, start + (unit + 1) * fan_in),
                 torch.tensor([start + fan_in * fan_out + unit])]
        if mode == "hidden":
            next_in, next_out = self.shapes[layer + 1]
            parts.append(self.offsets[layer + 1] + torch.arange(next_out) * next_in + unit)
        return torch.cat(parts)

    def memory_per_trial(self, batch: int, eval_batch: int, itemsize: int) -> int:
        """Bytes one trial of the stack needs: parameters, gradients, AdamW moments and LKG,
        the activations a training step keeps for backward, and an evaluation chunk."""
        widest = max(fan_out for _, fan_out in self.shapes)
        kept = INPUTS + 3 * sum(fan_out for _, fan_out in self.shapes) + 2 * self.dropout_units
        return itemsize * (5 * self.size + batch * kept + eval_batch * (INPUTS + 2 * widest))


class Stack:
    """The mutable state of a stack of trials: active weights, LKG, scores."""

    def __init__(self, specs: list[TrialSpec], device, dtype):
        arch, family = specs[0].arch, specs[0].family
        self.specs, self.layout = specs, Layout.of(arch, family)
        rows = []
        for spec in specs:
            params = initial_parameters(arch, family, spec.seed, dtype)
            rows.append(torch.cat([torch.cat([w.reshape(-1), b]) for w, b in params]))
        self.lkg = torch.stack(rows).to(device)
        self.active = self.lkg.clone()
        self.grad = torch.zeros_like(self.lkg)
        self.weights, self.grads = self.layout.views(self.active), self.layout.views(self.grad)
        n = len(specs)
        column = lambda values: torch.tensor(values, dtype=dtype, device=device).view(-1, 1)  # noqa: E731
        # AdamW's decoupled weight decay multiplies a decay trial's parameters by 1 - lr * wd,
        # rounded to dtype as torch rounds a Python scalar. With the study's lr = wd = 1e-4 that is
        # exactly 1 in float32 (so decay trains as none does, in torch's AdamW as here): only rows
        # that really shrink are touched, the span from the first to the last (order_specs keeps
        # them together; a row in between is multiplied by exactly 1).
        lr = specs[0].hyper.lr
        shrink = column([1 - lr * s.hyper.weight_decay if s.mode == "decay" else 1.0 for s in specs])
        shrinking = (shrink != 1).view(-1).nonzero().view(-1).tolist()
        self.decaying = slice(shrinking[0], shrinking[-1] + 1) if shrinking else None
        self.shrink = shrink[self.decaying] if shrinking else None
        self.lkg_score = [-1.0] * n
        self.bounty = [-1.0] * n
        self.bounty_loop = [0] * n
        # Dropout trials are kept contiguous (see order_specs) so their slice is a view.
        dropping = [i for i, s in enumerate(specs) if s.mode == "dropout"]
        self.drop = slice(dropping[0], dropping[-1] + 1) if dropping else None
        self.drop_p = column([specs[i].hyper.dropout for i in dropping]).view(-1, 1, 1) if dropping else None
        self.grid = None  # hashed dropout counters, built at the first batch
        # Sample orders: one per distinct seed when trial i has the (i mod G)-th seed, else one
        # per trial. Shared batches then go through the first layer without being copied per
        # trial, which pays where that layer is narrower than a batch (the copy would dominate).
        seeds = sorted({s.seed for s in specs})
        regular = len(specs) % len(seeds) == 0 and all(s.seed == seeds[i % len(seeds)] for i, s in enumerate(specs))
        self.seeds = seeds if regular else [s.seed for s in specs]
        first_layer_narrow = self.layout.plan[0][0] == "linear" and self.layout.shapes[0][1] <= specs[0].hyper.batch_size
        self.share_inputs = regular and first_layer_narrow
        self.fan_out = torch.arange(n, device=device) % len(self.seeds)  # trial -> its order's row


def batch_inputs(stack: Stack, data: MNIST, idx: torch.Tensor):
    """Inputs and labels of one step, given the sample indices (rows of stack.seeds' orders):
    labels, and inputs unless shared, fanned out to every trial."""
    x, y = data.x_train[idx], data.y_train[idx].index_select(0, stack.fan_out)
    return (x if stack.share_inputs else x.index_select(0, stack.fan_out)), y


def order_specs(specs: list[TrialSpec]) -> list[TrialSpec]:
    """Mode-major and seed-minor with the dropout trials first: a stack's dropout trials are then
    contiguous, and when every mode has the same seeds (a sweep's paired trials), trial i has the
    (i mod G)-th of the G seeds, so trials sharing a seed can share their input batch."""
    return sorted(specs, key=lambda s: (s.mode != "dropout", MODES.index(s.mode), s.seed, s.trial))


def _relu_backward(g: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """g where the ReLU was active: one fused kernel (what autograd uses), no float mask."""
    return torch.ops.aten.threshold_backward(g, activation, 0)


def _dropout_masks(stack: Stack, loop: int, step: int, batch: int):
    """Scaled keep-masks (dropout trials, batch, units) for this step, or None."""
    if stack.drop is None:
        return None
    if stack.grid is None or stack.grid.shape[0] < batch:
        stack.grid = randomness.counter_grid(batch, stack.layout.dropout_units, stack.lkg.device)
    specs = stack.specs[stack.drop]
    keys = torch.tensor([randomness.dropout_key(s.seed, loop, step) for s in specs],
                        dtype=torch.int64, device=stack.lkg.device).view(-1, 1, 1)
    keep = randomness.keep_mask(stack.grid[:batch], keys, stack.drop_p)
    return keep.to(stack.lkg.dtype) / (1 - stack.drop_p)


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (T, M, K) @ b (T, K, N). Batched GEMM is slow when a dimension is 1 (the width-1 stacks
    of the grid); broadcasting does those in one or two cheap element-wise operations."""
    if a.shape[2] == 1:
        return a * b
    if b.shape[2] == 1:
        return (a * b.transpose(1, 2)).sum(2, keepdim=True)
    if a.shape[1] == 1:
        return (a.transpose(1, 2) * b).sum(1, keepdim=True)
    return torch.bmm(a, b)


def _shared_linear(x, weight, bias):
    """x (G, B, in) is the input of every trial i = G * m + g of weight (T, out, in): one GEMM per
    group g over the weights of its trials, no per-trial copy of x."""
    groups, batch, fan_in = x.shape
    trials, fan_out = weight.shape[:2]
    per_group = weight.view(trials // groups, groups, fan_out, fan_in).transpose(0, 1)
    z = torch.bmm(x, per_group.reshape(groups, -1, fan_in).transpose(1, 2))  # (G, B, M * out)
    z = z.view(groups, batch, trials // groups, fan_out).permute(2, 0, 1, 3).reshape(trials, batch, fan_out)
    return z + bias.unsqueeze(1)


def _shared_weight_grad(g, x, out) -> None:
    """dW (T, out, in) into `out` for a layer whose input x (G, B, in) is shared as above."""
    groups, batch, fan_in = x.shape
    trials, _, fan_out = g.shape
    members = trials // groups
    per_group = g.view(members, groups, batch, fan_out).permute(1, 0, 3, 2).reshape(groups, -1, batch)
    dw = torch.bmm(per_group, x).view(groups, members, fan_out, fan_in)
    out.view(members, groups, fan_out, fan_in).copy_(dw.transpose(0, 1))


def _linear(x, weight, bias):
    if x.shape[0] != weight.shape[0]:
        return _shared_linear(x, weight, bias)
    if 1 in weight.shape[1:]:
        return _bmm(x, weight.transpose(1, 2)) + bias.unsqueeze(1)
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def forward(stack: Stack, x: torch.Tensor, masks=None, weights=None):
    """Logits (T, B, 10) and what backward needs, with `weights` (default: the active ones).
    `masks`: scaled keep-masks (dropout trials, B, units) while training, else None."""
    weights, layout, tape = weights or stack.weights, stack.layout, []

    def drop(a, point):
        """Dropout on the dropout trials' rows; `a` itself is kept for the ReLU backward."""
        if masks is None:
            return a
        start = layout.dropout_offsets[point]
        dropped = a.clone()
        dropped[stack.drop] *= masks[:, :, start : start + a.shape[2]]
        return dropped

    for point, (kind, l) in enumerate(layout.plan):
        if kind == "linear":
            a = torch.relu(_linear(x, *weights[l]))
            tape.append((x, a, None))
            x = drop(a, point)
        else:
            a = torch.relu(_linear(x, *weights[l]))
            d = drop(a, point)
            s = torch.relu(x + _linear(d, *weights[l + 1]))
            tape.append((x, a, (d, s)))
            x = s
    return _linear(x, *weights[-1]), x, tape


def layer_grads(stack: Stack, l: int, g: torch.Tensor, inputs: torch.Tensor) -> None:
    """Weight and bias gradients of linear layer `l` into stack.grad, from g = dloss/d(output)
    (T, B, out) and the layer's inputs (T, B, in), or (G, B, in) when shared."""
    weight, bias = stack.grads[l]
    if inputs.shape[0] != g.shape[0]:
        _shared_weight_grad(g, inputs, weight)
    else:  # computing into a fresh tensor and copying is ~10x faster than bmm(out=strided view)
        weight.copy_(_bmm(g.transpose(1, 2), inputs))
    torch.sum(g, 1, out=bias)  # straight into the strided view: no copy kernel per layer


def backward(stack: Stack, g: torch.Tensor, last: torch.Tensor, tape, masks=None) -> None:
    """Gradients of the mean loss into stack.grad, given g = dloss/dlogits (T, B, 10)."""
    weights, layout = stack.weights, stack.layout

    def undrop(g, point):
        if masks is None:
            return g
        start = layout.dropout_offsets[point]
        g[stack.drop] *= masks[:, :, start : start + g.shape[2]]
        return g

    layer_grads(stack, len(weights) - 1, g, last)
    g = _bmm(g, weights[-1][0])
    for point in range(len(layout.plan) - 1, -1, -1):
        kind, l = layout.plan[point]
        x, a, block = tape[point]
        if kind == "linear":
            g = _relu_backward(undrop(g, point), a)
            layer_grads(stack, l, g, x)
            if l > 0:
                g = _bmm(g, weights[l][0])
        else:
            d, s = block
            g_s = _relu_backward(g, s)
            layer_grads(stack, l + 1, g_s, d)
            g_z = _relu_backward(undrop(_bmm(g_s, weights[l + 1][0]), point), a)
            layer_grads(stack, l, g_z, x)
            g = g_s + _bmm(g_z, weights[l][0]) if l > 0 else None


def adamw_step(stack: Stack, m: torch.Tensor, v: torch.Tensor, step: torch.Tensor, lr: float) -> None:
    """torch.optim.AdamW's update of every trial's parameters: the per-trial weight decay, then
    torch's fused AdamW kernel on the whole flat buffer (one pass over parameters, gradients and
    moments; on a CPU the same arithmetic as AdamW's default implementation, bit for bit). `step`,
    a float32 scalar on the device as torch.optim keeps it, counts the updates and is advanced here,
    so the step can be captured in a CUDA graph."""
    if stack.decaying is not None:
        stack.active[stack.decaying].mul_(stack.shrink)
    step.add_(1)
    b1, b2 = BETAS
    torch._fused_adamw_([stack.active], [stack.grad], [m], [v], [], [step], lr=lr, beta1=b1, beta2=b2,
                        weight_decay=0.0, eps=EPS, amsgrad=False, maximize=False)


def cross_entropy_grad(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(mean cross-entropy)/d logits for each trial: (softmax - one_hot) / batch. The softmax is
    written out: torch.softmax over a last dimension of 10 is twice as slow on a CPU."""
    g = (logits - logits.amax(2, keepdim=True)).exp_()
    g /= g.sum(2, keepdim=True)
    g.scatter_add_(2, y.unsqueeze(2), torch.full_like(y, -1, dtype=g.dtype).unsqueeze(2))
    return g / logits.shape[1]


@torch.no_grad()
def accuracy(stack: Stack, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int) -> list[float]:
    """Accuracy (percent) of every trial's weights in `flat` on (x, y), in chunks of samples."""
    weights, layout = stack.layout.views(flat), stack.layout
    shared = layout.plan[0][0] == "linear" and layout.shapes[0][1] <= chunk  # see Stack.share_inputs
    correct = torch.zeros(flat.shape[0], dtype=torch.int64, device=flat.device)
    for i in range(0, len(x), chunk):
        xb = x[i : i + chunk].unsqueeze(0)
        xb = xb if shared else xb.expand(flat.shape[0], -1, -1)
        logits = forward(stack, xb, weights=weights)[0]
        correct += (logits.argmax(2) == y[i : i + chunk]).sum(1)
    return percent(correct, len(x))


def percent(correct: torch.Tensor, total: int) -> list[float]:
    """Accuracy in percent, computed on the host exactly as psa.engine does (a GPU divides
    through a reciprocal, which can differ in the last bit)."""
    return [100.0 * count / total for count in correct.tolist()]


def ablate(stack: Stack, loop: int) -> list:
    """Zero one neuron per ablative trial in the active buffer; returns each trial's choice."""
    choices, rows, cols = [], [], []
    for t, spec in enumerate(stack.specs):
        choice = ablation.choose(spec.mode, stack.layout.shapes, spec.family, spec.seed, loop)
        choices.append(choice)
        if choice is not None:
            idx = stack.layout.neuron_indices(spec.mode, *choice)
            rows.append(torch.full_like(idx, t))
            cols.append(idx)
    if rows:
        device = stack.active.device
        stack.active[torch.cat(rows).to(device), torch.cat(cols).to(device)] = 0
    return choices


def epoch_steps(stack: Stack, data: MNIST, loop: int):
    """One meta-loop's epoch for every trial of the stack, on stack.active: a generator that
    yields after each training step (callers run it under torch.no_grad())."""
    specs, n = stack.specs, len(data.x_train)
    size, lr = specs[0].hyper.batch_size, specs[0].hyper.lr
    # Trials sharing a seed (trial k of every mode) share their sample order: one shuffle per seed.
    orders = torch.stack([randomness.shuffle(seed, loop, n) for seed in stack.seeds]).to(stack.active.device)
    m, v = torch.zeros_like(stack.active), torch.zeros_like(stack.active)  # fresh AdamW state
    updates = torch.zeros((), dtype=torch.float32, device=stack.active.device)
    for step, start in enumerate(range(0, n, size)):
        idx = orders[:, start : start + size]
        x, y = batch_inputs(stack, data, idx)
        masks = _dropout_masks(stack, loop, step, idx.shape[1])
        logits, last, tape = forward(stack, x, masks)
        backward(stack, cross_entropy_grad(logits, y), last, tape, masks)
        adamw_step(stack, m, v, updates, lr)
        yield


def epoch_runner(stacks: list[Stack], data: MNIST):
    """A function (loop, on_batch) that trains every stack of `stacks` for one meta-loop's epoch,
    a step of each in turn: on a GPU through CUDA graphs that step the whole group at once.
    on_batch is called once per step of each stack."""
    if data.x_train.device.type == "cuda":
        from psa import cuda

        return cuda.Epochs(stacks, data)

    @torch.no_grad()
    def run(loop: int, on_batch=lambda: None) -> None:
        for _ in zip(*(epoch_steps(stack, data, loop) for stack in stacks)):  # equal step counts
            for _ in stacks:
                on_batch()

    return run


def accuracy_function(device: torch.device):
    """Validation and test accuracy for the device: on a GPU narrow stacks use the fused kernels."""
    if device.type == "cuda":
        from psa import cuda

        return cuda.accuracy
    return accuracy


def meta_loop(stacks: list[Stack], data: MNIST, loop: int, epoch, evaluate, on_batch=lambda: None,
              eval_chunk: int = 1000) -> list[list[LoopRecord]]:
    """One meta-loop (DESIGN.md section 4) of every trial of every stack, trained together by
    `epoch` (an epoch_runner): a fresh copy of the LKG, one ablation, an epoch, validation, LKG
    promotion on strict improvement. Returns each stack's records."""
    choices = []
    for stack in stacks:
        stack.active.copy_(stack.lkg)  # ablations never accumulate: each loop damages a fresh copy
        choices.append(ablate(stack, loop) if loop > 1 else [None] * len(stack.specs))
    epoch(loop, on_batch)
    return [_promote(stack, loop, evaluate(stack, stack.active, data.x_val, data.y_val, eval_chunk), chosen)
            for stack, chosen in zip(stacks, choices)]


def _promote(stack: Stack, loop: int, scores: list[float], choices: list) -> list[LoopRecord]:
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
        records.append(LoopRecord(loop, scores[t], stack.lkg_score[t], stack.bounty[t], improved[t],
                                  ablation.describe(choices[t])))
    return records


def train_stacks(groups: list[list[TrialSpec]], data: MNIST, meta_loops: int, on_loop=None,
                 on_batch=lambda: None, eval_chunk: int = 1000) -> list[list[TrialResult]]:
    """Run `meta_loops` meta-loops of every trial, each list of `groups` as one stack (one
    architecture and family, lr and batch size shared by all), the stacks side by side: a GPU
    steps them concurrently (see `pack`). `data` is already on the device."""
    device, dtype = data.x_train.device, data.x_train.dtype
    # Deep stacks' gradients underflow into denormals, which make CPU matmuls ~10x slower; float32
    # AdamW would turn such gradients into no update anyway (their square underflows to 0).
    torch.set_flush_denormal(True)
    started = time.perf_counter()
    stacks = [Stack(specs, device, dtype) for specs in groups]
    epoch, evaluate = epoch_runner(stacks, data), accuracy_function(device)
    histories = [[[] for _ in specs] for specs in groups]
    for loop in range(1, meta_loops + 1):
        for stack, stack_histories, records in zip(stacks, histories, meta_loop(stacks, data, loop, epoch, evaluate,
                                                                               on_batch, eval_chunk)):
            for spec, history, record in zip(stack.specs, stack_histories, records):
                history.append(record)
                if on_loop:
                    on_loop(spec, record)
    seconds = (time.perf_counter() - started) / sum(len(specs) for specs in groups)
    results = []
    for stack, stack_histories in zip(stacks, histories):
        tests = evaluate(stack, stack.lkg, data.x_test, data.y_test, eval_chunk)
        results.append([TrialResult(spec, stack.bounty[t], stack.bounty_loop[t], tests[t], stack_histories[t],
                                    seconds, str(device)) for t, spec in enumerate(stack.specs)])
    return results


def chunk_size(specs: list[TrialSpec], memory_bytes: int, itemsize: int = 4, eval_chunk: int = 1000) -> int:
    """How many trials of this architecture fit one stack within `memory_bytes`."""
    layout = Layout.of(specs[0].arch, specs[0].family)
    per_trial = layout.memory_per_trial(specs[0].hyper.batch_size, eval_chunk, itemsize)
    return max(1, min(len(specs), memory_bytes // per_trial))


def stacks_of(specs: list[TrialSpec], memory_bytes: int, itemsize: int = 4) -> list[list[TrialSpec]]:
    """The trials of one architecture, ordered (order_specs) and chunked to fit `memory_bytes`."""
    ordered = order_specs(specs)
    size = chunk_size(ordered, memory_bytes, itemsize)
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


# A stack of at most this many parameters (all its trials) leaves most of a GPU idle at every step
# of its own: 60 trials of 1*128 or of 44*44 (and every narrower or deep-and-narrow one) qualify.
PACK_PARAMS = 8_000_000


def pack(stacks: list[list[TrialSpec]], limit: int) -> list[list[list[TrialSpec]]]:
    """Group consecutive small stacks, at most `limit` per group, to train side by side
    (train_stacks); a large stack trains alone."""
    groups, current = [], []
    for specs in stacks:
        if limit > 1 and len(specs) * Layout.of(specs[0].arch, specs[0].family).size <= PACK_PARAMS:
            current.append(specs)
            if len(current) < limit:
                continue
            groups.append(current)
        else:
            if current:
                groups.append(current)
            groups.append([specs])
        current = []
    return groups + ([current] if current else [])


def train_trials(specs: list[TrialSpec], data: MNIST, meta_loops: int, device: str = "cpu",
                 on_loop=None, memory_bytes: int = 2 << 30, dtype=torch.float32,
                 on_batch=lambda: None) -> list[TrialResult]:
    """Train trials of one architecture and family in stacks that fit `memory_bytes`, one stack
    at a time; results come back in the order of `specs`."""
    data = data.to(device, dtype)
    results = {}
    for stack in stacks_of(specs, memory_bytes, torch.finfo(dtype).bits // 8):
        for result in train_stacks([stack], data, meta_loops, on_loop, on_batch)[0]:
            results[id(result.spec)] = result
    return [results[id(spec)] for spec in specs]
