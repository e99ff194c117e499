"""psa's version, and the name of the distribution that installs it (`psa` on the package index
is another project)."""

__version__ = "0.1.0"
DISTRIBUTION = "persistent-stochastic-ablation"
