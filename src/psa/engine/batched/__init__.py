"""The batched engine: all trials of an architecture trained together as one stacked computation,
each trial exactly as the single-trial engine (psa.engine.reference) would train it alone.

- stack: the flat parameter layout and a stack's state; ablation and LKG promotion.
- ops: forward, backward, AdamW and accuracy on whole stacks.
- step: the one training step and the per-loop state it reads (the Epoch).
- loop: the meta-loop over a group of stacks (train_stacks, train_trials), and the steps and
  accuracy it uses on the data's device (device_path: CUDA graphs and fused kernels on a GPU).
- grouping: which trials form a stack, and which stacks train side by side.
- cuda, kernels: the GPU path (CUDA graphs of the same step; fused Triton chains)."""

# Results of a fixed seed change when the float32 arithmetic order changes: the store records the
# version that began each trial, and a resume under another is refused (psa.sweeps.grid.check_engine).
ENGINE_VERSION = 1

from psa.engine.batched.grouping import order_specs  # noqa: E402
from psa.engine.batched.loop import device_path, train_stacks, train_trials  # noqa: E402
from psa.engine.batched.stack import Stack  # noqa: E402

__all__ = ["ENGINE_VERSION", "Stack", "device_path", "order_specs", "train_stacks", "train_trials"]
