"""Persistent Stochastic Ablation (PSA): train, sweep, analyse and publish the PSA study.

The layers, each a package, from the bottom: `trial` (what a trial is), `engine` (what trains it),
`store` (the results store), `sweeps` (runs of a grid), `study` (what results say), `bench`,
`clusters` (Slurm, SageMaker) and `cli` (the `psa` command); each imports only those below it.
Importing psa changes nothing in the process (training tunes it where training starts), and loads
no more than this: `psa.open_study` brings in pandas when first called.

    import psa
    study = psa.open_study("results/psa.sqlite")  # a store, a folder of exports, or "published"
    study.trials, study.loops, study.summary(), study.regimes(), study.convergence(), study.manifest
"""

from psa.errors import PSAError
from psa.version import DISTRIBUTION, __version__

__all__ = ["DISTRIBUTION", "PSAError", "__version__", "open_study"]


def open_study(source):
    """The study at `source` (docs/API.md): see psa.study.study.open_study."""
    from psa.study.study import open_study

    return open_study(source)
