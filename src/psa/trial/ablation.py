"""The three ablations (docs/DESIGN.md section 4): which neuron is hit and which weights are
zeroed. Layers are indexed in compute order (the order of `model.linears`); the choice depends only
on the topology, the trial seed and the meta-loop, so every engine draws the same neuron."""

import torch

from psa.trial import randomness
from psa.trial.modes import ABLATIVE_MODES
from psa.trial.topology import Topology


def choose(mode: str, top: Topology, seed: int, loop: int):
    """(layer, unit) to ablate before training meta-loop `loop`, or None."""
    if mode not in ABLATIVE_MODES:
        return None
    g = randomness.generator(seed, "ablate", loop)
    draw = lambda high: int(torch.randint(high, (1,), generator=g))  # noqa: E731
    outs = [fan_out for _, fan_out in top.shapes]
    if mode == "output":
        return len(outs) - 1, draw(outs[-1])
    if mode == "full":
        layer = draw(len(outs))
        return layer, draw(outs[layer])
    if len(top.hidden) == 0:
        return None
    k = draw(sum(outs[layer] for layer in top.hidden))  # uniform over units: wide layers hit more often
    for layer in top.hidden:
        if k < outs[layer]:
            return layer, k
        k -= outs[layer]
    raise AssertionError("unit index past the last hidden layer")


def describe(choice) -> str | None:
    return None if choice is None else f"{choice[0]}:{choice[1]}"


@torch.no_grad()
def apply(linears, mode: str, choice) -> None:
    """Zero the chosen neuron's incoming row and bias; in `hidden` mode also its outgoing column
    in the next linear layer ("full" ablation of the neuron). `linears` is a list of nn.Linear."""
    if choice is None:
        return
    layer, unit = choice
    linears[layer].weight[unit].zero_()
    linears[layer].bias[unit].zero_()
    if mode == "hidden":
        linears[layer + 1].weight[:, unit].zero_()
