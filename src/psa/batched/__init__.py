"""The batched engine: all trials of an architecture trained together as one stacked computation,
each trial exactly as the single-trial engine (psa.engine) would train it alone.

- stack: the flat parameter layout and a stack's state; ablation and LKG promotion.
- ops: forward, backward, AdamW and accuracy on whole stacks.
- step: the one training step and the per-loop state it reads (the Epoch).
- loop: the meta-loop over a group of stacks (train_stacks, train_trials).
- plan: which trials form a stack, and which stacks train side by side.
- cuda, kernels: the GPU path (CUDA graphs of the same step; fused Triton chains)."""

from psa.batched.loop import train_stacks, train_trials
from psa.batched.plan import order_specs
from psa.batched.stack import Stack

__all__ = ["Stack", "order_specs", "train_stacks", "train_trials"]
