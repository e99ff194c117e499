"""The three ablations of DESIGN.md section 4: which neuron is hit and which weights are zeroed.
Layers are indexed in compute order (the order of `model.linears`); the choice depends only on
the layer shapes, the trial seed and the meta-loop, so every engine draws the same neuron."""

import torch

from psa import randomness
from psa.modes import ABLATIVE_MODES


def hidden_layers(family: str, n_linear: int) -> range:
    """SimpleMLP: every linear layer but the last; ResMLP: every one but the first and the last."""
    return range(0, n_linear - 1) if family == "simplemlp" else range(1, n_linear - 1)


def choose(mode: str, shapes: list[tuple[int, int]], family: str, seed: int, loop: int):
    """(layer, unit) to ablate before training meta-loop `loop`, or None."""
    if mode not in ABLATIVE_MODES:
        return None
    g = randomness.generator(seed, "ablate", loop)
    draw = lambda high: int(torch.randint(high, (1,), generator=g))  # noqa: E731
    outs = [fan_out for _, fan_out in shapes]
    if mode == "output":
        return len(outs) - 1, draw(outs[-1])
    if mode == "full":
        layer = draw(len(outs))
        return layer, draw(outs[layer])
    layers = hidden_layers(family, len(outs))
    if len(layers) == 0:
        return None
    k = draw(sum(outs[layer] for layer in layers))  # uniform over units: wide layers hit more often
    for layer in layers:
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
