"""The batched engine: all trials of an architecture trained together as one stacked computation,
each trial exactly as the single-trial engine (psa.engine.reference) would train it alone.

- stack: the flat parameter layout and a stack's state; ablation and LKG promotion.
- ops: forward, backward, AdamW and accuracy on whole stacks.
- step: the one training step and the per-loop state it reads (the Epoch).
- loop: the meta-loop over a group of stacks (train_stacks, train_trials), and the steps and
  accuracy it uses on the data's device (device_path: CUDA graphs and fused kernels on a GPU).
- grouping: which trials form a stack, and which stacks train side by side.
- native: narrow chains fused on a CPU (chain.cpp, built by the system's C++ compiler).
- cuda, kernels: the GPU path (CUDA graphs of the same step; fused Triton chains)."""

from psa.engine.batched.grouping import order_specs
from psa.engine.batched.loop import device_path, train_stacks, train_trials
from psa.engine.batched.native import ENGINE_VERSION, engine_version
from psa.engine.batched.stack import Stack

__all__ = ["ENGINE_VERSION", "Stack", "engine_version", "device_path", "order_specs", "train_stacks", "train_trials"]
