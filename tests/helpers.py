"""Small real-MNIST subsets, so engine tests train for real in a fraction of a second; what an
export of a store holds, to compare two ways of running one grid."""

import csv
from pathlib import Path

import pytest
import torch

from psa.cli import main
from psa.trial.data import MNIST

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
