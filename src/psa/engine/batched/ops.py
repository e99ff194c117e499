"""The math of a stack, written out by hand with batched matmuls: forward, backward into the
flat gradient buffer, the loss gradient, AdamW on whole buffers, and accuracy. A 2048-layer stack
then costs a few operations per layer, not a few per layer and trial. psa.engine.batched.kernels
replaces forward and backward for narrow chains on a GPU, with the same signatures."""

import torch

from psa.engine.batched.stack import Stack
from psa.trial.spec import BETAS, EPS


def relu_backward_(g: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """g where the ReLU was active, in place: autograd's fused kernel, no float mask. A fresh
    buffer of a wide stack's activations costs more in page faults than the kernel itself."""
    return torch.ops.aten.threshold_backward.grad_input(g, activation, 0, grad_input=g)


def bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
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


def linear(x, weight, bias):
    """x (T, B, in), or (G, B, in) shared by groups of trials, through weight (T, out, in)."""
    if x.shape[0] != weight.shape[0]:
        return _shared_linear(x, weight, bias)
    if 1 in weight.shape[1:]:
        return bmm(x, weight.transpose(1, 2)) + bias.unsqueeze(1)
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def units_of(masks, first: int, count: int) -> torch.Tensor:
    """The scaled keep-masks (dropout trials, B, count) of units first .. first + count - 1 from
    `masks`: all of a step's (dropout trials, B, units), or a function of (first, stop) that
    draws them (psa.engine.batched.native.keep_masks)."""
    return masks(first, first + count) if callable(masks) else masks[:, :, first : first + count]


def forward(stack: Stack, x: torch.Tensor, masks=None, weights=None, keep: bool = True):
    """Logits (T, B, 10) and what backward needs, with `weights` (default: the active ones).
    `masks` (units_of) while training, else None. Without `keep` (evaluation), no tape: each
    activation is freed once the next layer has read it."""
    weights, top, tape = weights or stack.weights, stack.layout.topology, []
    record = tape.append if keep else lambda entry: None
    offsets = top.dropout_offsets

    def drop_(a, point):
        """Dropout in place on the dropout trials' rows. The tape keeps the dropped output for the
        ReLU backward: a dropped unit's gradient is zero anyway, and a kept unit's output is
        positive exactly where it was before (the fused kernels do the same)."""
        if masks is not None:
            a[stack.drop] *= units_of(masks, offsets[point], a.shape[2])
        return a

    for point, (kind, li) in enumerate(top.sequence):
        a = drop_(linear(x, *weights[li]).relu_(), point)  # linear's output is fresh: no second buffer
        if kind == "linear":
            record((x, a, None))
            x = a
        else:
            s = linear(a, *weights[li + 1]).add_(x).relu_()
            record((x, a, s))
            x = s
    return linear(x, *weights[-1]), x, tape


def layer_grads(stack: Stack, li: int, g: torch.Tensor, inputs: torch.Tensor) -> None:
    """Weight and bias gradients of linear layer `li` into stack.grad, from g = dloss/d(output)
    (T, B, out) and the layer's inputs (T, B, in), or (G, B, in) when shared."""
    weight, bias = stack.grads[li]
    if inputs.shape[0] != g.shape[0]:
        _shared_weight_grad(g, inputs, weight)
    else:  # computing into a fresh tensor and copying is ~10x faster than bmm(out=strided view)
        weight.copy_(bmm(g.transpose(1, 2), inputs))
    torch.sum(g, 1, out=bias)  # straight into the strided view: no copy kernel per layer


def backward(stack: Stack, g: torch.Tensor, last: torch.Tensor, tape, masks=None) -> None:
    """Gradients of the mean loss into stack.grad, given g = dloss/dlogits (T, B, 10)."""
    weights, top = stack.weights, stack.layout.topology
    offsets = top.dropout_offsets

    def undrop(g, point):
        if masks is not None:
            g[stack.drop] *= units_of(masks, offsets[point], g.shape[2])
        return g

    layer_grads(stack, len(weights) - 1, g, last)
    g = bmm(g, weights[-1][0])
    for point in range(len(top.sequence) - 1, -1, -1):
        kind, li = top.sequence[point]
        x, a, s = tape[point]
        if kind == "linear":
            g = relu_backward_(undrop(g, point), a)
            layer_grads(stack, li, g, x)
            if li > 0:
                g = bmm(g, weights[li][0])
        else:
            g_s = relu_backward_(g, s)
            layer_grads(stack, li + 1, g_s, a)
            g_z = relu_backward_(undrop(bmm(g_s, weights[li + 1][0]), point), a)
            layer_grads(stack, li, g_z, x)
            g = bmm(g_z, weights[li][0]).add_(g_s) if li > 0 else None


def cross_entropy_grad(logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor | None = None) -> torch.Tensor:
    """d(mean cross-entropy)/d logits for each trial: (softmax - one_hot) / batch. The softmax is
    written out: torch.softmax over a last dimension of 10 is twice as slow on a CPU. With `loss`
    (T,), each trial's mean cross-entropy of the batch is added to it, on the device: the
    log-sum-exp comes from the softmax's own sums, so recording the loss costs a log and a gather."""
    top = logits.amax(2, keepdim=True)
    g = (logits - top).exp_()
    sums = g.sum(2, keepdim=True)
    if loss is not None:
        loss += sums.log().add_(top).sub_(logits.gather(2, y.unsqueeze(2))).mean((1, 2))
    g /= sums
    g.scatter_add_(2, y.unsqueeze(2), torch.full_like(y, -1, dtype=g.dtype).unsqueeze(2))
    return g / logits.shape[1]


def gradients(stack: Stack, x, y: torch.Tensor, masks=None, loss=None, forward=forward, backward=backward):
    """One step's gradients of each trial's mean cross-entropy on (x, y) into stack.grad, its loss
    added to `loss` (T,) where given: forward, cross_entropy_grad, backward."""
    logits, last, tape = forward(stack, x, masks)
    backward(stack, cross_entropy_grad(logits, y, loss), last, tape, masks)


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
    torch._fused_adamw_(
        [stack.active],
        [stack.grad],
        [m],
        [v],
        [],
        [step],
        lr=lr,
        beta1=b1,
        beta2=b2,
        weight_decay=0.0,
        eps=EPS,
        amsgrad=False,
        maximize=False,
    )


def shares_samples(stack: Stack, samples: int) -> bool:
    """Whether evaluation can send one chunk of samples through the first layer for all trials
    (as Stack.share_inputs does for training batches)."""
    top = stack.layout.topology
    return top.sequence[0][0] == "linear" and top.shapes[0][1] <= samples


@torch.no_grad()
def accuracy(
    stack: Stack, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000, logits_of=None
) -> list[float]:
    """Accuracy (percent) of every trial's weights in `flat` on (x, y), in chunks of samples.
    logits_of(chunk of inputs) gives the logits (default: forward() without a tape)."""
    shared = shares_samples(stack, chunk)
    if logits_of is None:
        weights = stack.layout.views(flat)
        logits_of = lambda xb: forward(stack, xb, weights=weights, keep=False)[0]  # noqa: E731
    correct = torch.zeros(flat.shape[0], dtype=torch.int64, device=flat.device)
    for i in range(0, len(x), chunk):
        xb = x[i : i + chunk].unsqueeze(0)
        xb = xb if shared else xb.expand(flat.shape[0], -1, -1)
        logits = logits_of(xb)
        correct += (logits.argmax(2) == y[i : i + chunk]).sum(1)
    return percent(correct, len(x))


def percent(correct: torch.Tensor, total: int) -> list[float]:
    """Accuracy in percent, computed on the host exactly as psa.engine.reference does (a GPU divides
    through a reciprocal, which can differ in the last bit)."""
    return [100.0 * count / total for count in correct.tolist()]
