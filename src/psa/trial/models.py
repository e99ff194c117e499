"""SimpleMLP and ResMLP as nn.Modules, wired by their psa.trial.topology. Linear layers are kept in
compute order in `model.linears`, the order that ablation and the batched engine index by."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from psa.trial import randomness
from psa.trial.architecture import Architecture
from psa.trial.topology import Topology, topology


def initial_parameters(arch: Architecture, family: str, seed: int, dtype=torch.float32):
    """(weight, bias) of every linear layer in compute order, drawn as nn.Linear's default
    initialisation does (uniform in +-1/sqrt(fan_in)) but from the trial's own generator."""
    g = randomness.generator(seed, "init")
    params = []
    for fan_in, fan_out in topology(arch, family).shapes:
        bound = 1.0 / math.sqrt(fan_in)
        weight = torch.empty(fan_out, fan_in, dtype=dtype).uniform_(-bound, bound, generator=g)
        bias = torch.empty(fan_out, dtype=dtype).uniform_(-bound, bound, generator=g)
        params.append((weight, bias))
    return params


class KeyedDropout(nn.Module):
    """Dropout whose mask is a hash of (step key, sample position, unit offset + unit), see
    psa.trial.randomness. `offset` places this layer's units in the model's counter space."""

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


class MLP(nn.Module):
    """A SimpleMLP or a ResMLP: its topology's sequence run over its linear layers."""

    def __init__(self, top: Topology, dropout: float = 0.0):
        super().__init__()
        self.sequence = top.sequence
        self.linears = nn.ModuleList(nn.Linear(fan_in, fan_out) for fan_in, fan_out in top.shapes)
        self.dropouts = nn.ModuleList(
            KeyedDropout(dropout, offset, top.dropout_units) for offset in top.dropout_offsets
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for (kind, li), dropout in zip(self.sequence, self.dropouts):
            if kind == "linear":
                x = dropout(F.relu(self.linears[li](x)))
            else:
                x = F.relu(x + self.linears[li + 1](dropout(F.relu(self.linears[li](x)))))
        return self.linears[-1](x)

    def set_dropout_key(self, key: int) -> None:
        for dropout in self.dropouts:
            dropout.key = key


def build_model(arch: Architecture, family: str, seed: int, dropout: float = 0.0, dtype=torch.float32) -> MLP:
    model = MLP(topology(arch, family), dropout).to(dtype)
    with torch.no_grad():
        for linear, (weight, bias) in zip(model.linears, initial_parameters(arch, family, seed, dtype)):
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
    return model
