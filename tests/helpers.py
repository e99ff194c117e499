"""Small real-MNIST subsets, so engine tests train for real in a fraction of a second; what an
export of a store holds, to compare two ways of running one grid."""

import csv
from pathlib import Path

import pytest
import torch

from psa.cli import main
from psa.engine import batched
from psa.engine.batched import native, ops
from psa.engine.batched.step import dropout_masks, loop_inputs
from psa.trial import randomness
from psa.trial.architecture import Architecture
from psa.trial.data import MNIST
from psa.trial.modes import MODES
from psa.trial.spec import Hyper, TrialSpec

# Columns of psa_trials.csv that say when and how long, not what: they differ between any two runs.
WHEN = {"seconds", "updated"}


def subset(mnist: MNIST, train: int = 1000, val: int = 500, dtype=torch.float32) -> MNIST:
    return MNIST(
        mnist.x_train[:train],
        mnist.y_train[:train],
        mnist.x_val[:val],
        mnist.y_val[:val],
        mnist.x_test[:val],
        mnist.y_test[:val],
        mnist.y_full_train,
        mnist.train_indices,
        mnist.val_indices,
        mnist.source,
        None if mnist.pixels_train is None else mnist.pixels_train[:train],
    ).to("cpu", dtype)


def exported(store: str, out: str, ignore: set = WHEN) -> dict[str, list]:
    """Every file `psa export` writes of `store`: its lines, the trials CSV without the columns `ignore`."""
    main(["export", "--store", store, "--out", out])
    files = {}
    for path in sorted(Path(out).iterdir()):
        if path.name == "manifest.json":
            continue  # how the results were made (each run's machine and times), not what they are
        if path.name == "psa_trials.csv":
            with open(path) as handle:
                files[path.name] = [{k: v for k, v in row.items() if k not in ignore} for row in csv.DictReader(handle)]
        else:
            files[path.name] = path.read_text().splitlines()
    return files


def need(available: bool, reason: str) -> None:
    """Skip the test when a service or tool it needs is missing here; in CI a skip is a failure
    (tests/conftest.py), since .ci/run installs them all."""
    if not available:
        pytest.skip(reason)


def chain_stack(arch: str, dtype, device, modes=MODES, seed=3) -> batched.Stack:
    """A SimpleMLP stack of one trial per mode with random weights well away from the
    initialisation, so that ReLUs both fire and die: for the fused chains' tests."""
    hyper = Hyper(dropout=0.3)
    specs = batched.order_specs(
        [TrialSpec(Architecture.parse(arch), "simplemlp", mode, 0, seed + i, hyper) for i, mode in enumerate(modes)]
    )
    stack = batched.Stack.of(specs, device, dtype)
    generator = torch.Generator().manual_seed(seed)
    stack.active.copy_(torch.randn(stack.active.shape, generator=generator, dtype=dtype) * 0.6)
    return stack


def chain_step(stack, batch: int, step: int = 0, masks_of=dropout_masks):
    """Random inputs, labels and the step's dropout masks from `masks_of` (None without dropout
    trials)."""
    device, generator = stack.active.device, torch.Generator().manual_seed(100 + step)
    x = torch.randn(len(stack.specs), batch, 784, generator=generator, dtype=stack.active.dtype).to(device)
    y = torch.randint(10, (len(stack.specs), batch), generator=generator).to(device)
    if stack.drop is None:
        return x, y, None
    keys = loop_inputs(stack, 1, batch, step + 1)[1][step].to(device)
    grid = randomness.counter_grid(batch, stack.layout.topology.dropout_units, device)
    return x, y, masks_of(stack, grid, keys, batch)


def gradients(stack, module, x, y, masks, **options):
    """Logits and gradients of one step through `module`: native's fused step, or the forward,
    loss gradient and backward of ops or kernels."""
    stack.grad.fill_(float("nan"))  # every element must be written
    if module is native:
        logits = torch.empty(*y.shape, 10, dtype=stack.active.dtype)
        native.gradients(stack, x, y, masks, logits=logits)
    else:
        logits, last, tape = module.forward(stack, x, masks, **options)
        module.backward(stack, ops.cross_entropy_grad(logits, y), last, tape, masks, **options)
    return logits, stack.grad.clone()


def relative(a, b):
    return float((a - b).norm() / b.norm())
