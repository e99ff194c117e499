"""The structure of a model, worked out once: its linear layers in compute order, how they are
wired, where dropout acts, and which layers count as hidden for ablation. The nn.Module models,
the batched engine's flat layout, ablation and parameter counts all read it from here.

- SimpleMLP: 784 -> [Linear -> ReLU -> Dropout] per hidden layer -> Linear(10).
- ResMLP: per run of equal widths, a transition Linear -> ReLU -> Dropout where the width
  changes, then one residual block relu(x + Linear(Dropout(ReLU(Linear(x))))) per layer of the
  run, then Linear(10)."""

import functools
import itertools
from dataclasses import dataclass

from psa.trial.architecture import INPUTS, OUTPUTS, Architecture, check_family


@dataclass(frozen=True)
class Topology:
    family: str
    shapes: tuple[tuple[int, int], ...]  # (fan_in, fan_out) of every linear layer, output layer last
    # The compute sequence: ("linear", l) is hidden layer l with its ReLU and dropout; ("block", l) is
    # a residual block of layers l and l + 1 with the dropout between them.
    sequence: tuple[tuple[str, int], ...]
    # Where each dropout point's units start in the model's dropout counter space (psa.trial.randomness),
    # in sequence order, and how many units that space holds.
    dropout_offsets: tuple[int, ...]
    dropout_units: int

    @property
    def parameters(self) -> int:
        return sum((fan_in + 1) * fan_out for fan_in, fan_out in self.shapes)

    @property
    def hidden(self) -> range:
        """The layers whose units `hidden` ablation may hit: every linear layer but the output one,
        and for ResMLP not the first one either."""
        return range(0 if self.family == "simplemlp" else 1, len(self.shapes) - 1)


@functools.cache
def topology(arch: Architecture, family: str) -> Topology:
    if check_family(family) == "simplemlp":
        dims = (INPUTS, *arch.widths, OUTPUTS)
        shapes = list(zip(dims[:-1], dims[1:]))
        sequence = [("linear", li) for li in range(len(shapes) - 1)]
    else:
        shapes, sequence, current = [], [], INPUTS
        for count, width in arch.segments:
            if width != current:
                sequence.append(("linear", len(shapes)))
                shapes.append((current, width))
                current = width
            for _ in range(count):
                sequence.append(("block", len(shapes)))
                shapes += [(width, width), (width, width)]
        shapes.append((current, OUTPUTS))
    offsets = tuple(itertools.accumulate((shapes[li][1] for _, li in sequence), initial=0))
    return Topology(family, tuple(shapes), tuple(sequence), offsets[:-1], offsets[-1])


def parameter_count(arch: Architecture, family: str = "simplemlp") -> int:
    return topology(arch, family).parameters
