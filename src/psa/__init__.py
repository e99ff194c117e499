"""Persistent Stochastic Ablation (PSA): train, sweep, analyse and publish the PSA study.

The layers, each a package, from the bottom: `trial` (what a trial is), `engine` (what trains
it), `store` (the results store), `sweeps` (runs of a grid), `study` (what results say), `bench`,
`clusters` (Slurm, SageMaker) and `cli` (the `psa` command); each imports only those below it.
Importing psa changes nothing in the process: training tunes it where training starts."""

from psa.errors import PSAError

__version__ = "0.1.0"
DISTRIBUTION = "persistent-stochastic-ablation"  # the name `pip` knows psa by; `psa` on the index is another project

__all__ = ["DISTRIBUTION", "PSAError", "__version__"]
