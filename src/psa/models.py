"""SimpleMLP and ResMLP built from an Architecture. Linear layers are kept in compute order in
`model.linears`, the order that ablation and the batched engine index by."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from psa import randomness
from psa.architecture import INPUTS, Architecture, linear_shapes


def initial_parameters(arch: Architecture, family: str, seed: int, dtype=torch.float32):
    """(weight, bias) of every linear layer in compute order, drawn as nn.Linear's default
    initialisation does (uniform in +-1/sqrt(fan_in)) but from the trial's own generator."""
    g = randomness.generator(seed, "init")
    params = []
    for fan_in, fan_out in linear_shapes(arch, family):
        bound = 1.0 / math.sqrt(fan_in)
        weight = torch.empty(fan_out, fan_in, dtype=dtype).uniform_(-bound, bound, generator=g)
        bias = torch.empty(fan_out, dtype=dtype).uniform_(-bound, bound, generator=g)
        params.append((weight, bias))
    return params


class KeyedDropout(nn.Module):
    """Dropout whose mask is a hash of (step key, sample position, unit offset + unit), see
    psa.randomness. `offset` places this layer's units in the model's counter space."""

    def __init__(self, p: float, offset: int, model_units: int):
        super().__init__()
        self.p, self.offset, self.model_units = p, offset, model_units
        self.key = 0  # set by the engine before each training step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        grid = randomness.counter_grid(x.shape[0], self.model_units, x.device)
        grid = grid[:, self.offset : self.offset + x.shape[1]]
        return x * randomness.keep_mask(grid, self.key, self.p) / (1 - self.p)


class _MLP(nn.Module):
    def set_dropout_key(self, key: int) -> None:
        for module in self.modules():
            if isinstance(module, KeyedDropout):
                module.key = key

    def load_initial(self, params) -> None:
        with torch.no_grad():
            for linear, (weight, bias) in zip(self.linears, params):
                linear.weight.copy_(weight)
                linear.bias.copy_(bias)


class SimpleMLP(_MLP):
    """784 -> [Linear -> ReLU -> Dropout] per hidden layer -> Linear(10)."""

    def __init__(self, arch: Architecture, dropout: float = 0.0):
        super().__init__()
        shapes = linear_shapes(arch, "simplemlp")
        self.linears = nn.ModuleList(nn.Linear(i, o) for i, o in shapes)
        offsets = [sum(arch.widths[:k]) for k in range(len(arch.widths))]
        self.dropouts = nn.ModuleList(KeyedDropout(dropout, off, sum(arch.widths)) for off in offsets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear, dropout in zip(self.linears[:-1], self.dropouts):
            x = dropout(F.relu(linear(x)))
        return self.linears[-1](x)


class ResMLP(_MLP):
    """Per run of equal widths: a transition Linear(+ReLU+Dropout) when the width changes, then
    that many blocks relu(x + Linear(Dropout(ReLU(Linear(x))))), then Linear(10)."""

    def __init__(self, arch: Architecture, dropout: float = 0.0):
        super().__init__()
        shapes = linear_shapes(arch, "resmlp")
        self.linears = nn.ModuleList(nn.Linear(i, o) for i, o in shapes)
        # One dropout per transition and per block, in compute order, each with its unit offset.
        self.plan = []  # ("transition", linear index) or ("block", first linear index)
        widths, current, index = [], INPUTS, 0
        for count, width in arch.segments:
            if width != current:
                self.plan.append(("transition", index))
                widths.append(width)
                index, current = index + 1, width
            for _ in range(count):
                self.plan.append(("block", index))
                widths.append(width)
                index += 2
        offsets = [sum(widths[:k]) for k in range(len(widths))]
        self.dropouts = nn.ModuleList(KeyedDropout(dropout, off, sum(widths)) for off in offsets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for (kind, i), dropout in zip(self.plan, self.dropouts):
            if kind == "transition":
                x = dropout(F.relu(self.linears[i](x)))
            else:
                x = F.relu(x + self.linears[i + 1](dropout(F.relu(self.linears[i](x)))))
        return self.linears[-1](x)


def build_model(arch: Architecture, family: str, seed: int, dropout: float = 0.0, dtype=torch.float32):
    model = {"simplemlp": SimpleMLP, "resmlp": ResMLP}[family](arch, dropout).to(dtype)
    model.load_initial(initial_parameters(arch, family, seed, dtype))
    return model
