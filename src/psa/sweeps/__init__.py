"""Runs of a grid: a run's settings, the one run path every front end calls (`sweep`), its journal
into the store, shards, merges, a worker per device and TensorBoard curves."""
