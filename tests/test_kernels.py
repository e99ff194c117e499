"""The fused narrow-chain kernels against psa.engine.batched.ops' forward and backward. Without CUDA they
run under Triton's interpreter; without triton the module is skipped."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # must precede the first import of triton

import pytest  # noqa: E402

pytest.importorskip("triton")

from psa.engine.batched import kernels, ops  # noqa: E402
from psa.engine.batched.stack import Layout  # noqa: E402

if os.environ.get("TRITON_INTERPRET") == "1":
    # Triton 3.6's interpreter turns loop bounds into Python ints with int() of a one-element
    # array, which NumPy >= 2.4 refuses; .item() is what it means.
    from triton.runtime import interpreter

    _patch_tensor = interpreter._patch_lang_tensor

    def _patch_lang_tensor(tensor, scope):
        _patch_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.item()))

    interpreter._patch_lang_tensor = _patch_lang_tensor
from helpers import chain_stack, chain_step, gradients, relative  # noqa: E402
from psa.trial import randomness  # noqa: E402
from psa.trial.architecture import Architecture  # noqa: E402
from psa.trial.modes import MODES  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def make_stack(arch: str, dtype, modes=MODES, seed=3):
    return chain_stack(arch, dtype, DEVICE, modes, seed)


@pytest.mark.parametrize("arch", ["5*1", "4*2", "3*5", "4*8", "3*12", "2*32"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_step_matches_the_batched_engine(arch, dtype):
    stack = make_stack(arch, dtype)
    assert kernels.supported(stack)
    for batch, step in ((50, 0), (7, 1)):  # a block size that does not divide the batch, and a tiny one
        x, y, masks = chain_step(stack, batch, step)
        ref_logits, ref_grad = gradients(stack, ops, x, y, masks)
        logits, grad = gradients(stack, kernels, x, y, masks)
        assert not grad.isnan().any()
        tolerance = 1e-12 if dtype == torch.float64 else 1e-5
        assert relative(logits, ref_logits) < tolerance
        assert relative(grad, ref_grad) < tolerance
        for (w, b), (rw, rb) in zip(stack.layout.views(grad), stack.layout.views(ref_grad)):
            assert relative(w, rw) < tolerance or rw.norm() == w.norm() == 0
            assert relative(b, rb) < tolerance or rb.norm() == b.norm() == 0


def test_dropout_masks_reach_every_chain_layer():
    """With dropout trials in the stack, the fused step must differ from the same step without
    masks exactly where ops.forward says it does."""
    stack = make_stack("4*4", torch.float64, modes=("dropout", "dropout", "none"))
    x, y, masks = chain_step(stack, 33)
    with_masks = gradients(stack, kernels, x, y, masks)[0]
    without = gradients(stack, kernels, x, y, None)[0]
    assert relative(with_masks, ops.forward(stack, x, masks)[0]) < 1e-12
    assert not torch.equal(with_masks[:2], without[:2])  # the dropout trials
    assert torch.equal(with_masks[2], without[2])  # the plain one is untouched


def test_evaluation_forward_keeps_no_tape():
    stack = make_stack("6*3", torch.float32)
    x = chain_step(stack, 40)[0]
    logits, last, (_, acts) = kernels.forward(stack, x, flat=stack.lkg, tape=False)
    assert acts is None
    assert relative(logits, ops.forward(stack, x, weights=stack.layout.views(stack.lkg))[0]) < 1e-5


@pytest.mark.parametrize(
    "arch, family, width",
    [
        ("5*3", "simplemlp", 3),
        ("1*8", "simplemlp", None),
        ("[2*4, 2*8]", "simplemlp", None),
        ("40*40", "simplemlp", None),
        ("4*4", "resmlp", None),
    ],
)
def test_which_stacks_have_a_fusable_chain(arch, family, width):
    assert Layout.of(Architecture.parse(arch), family).chain_width == width


@pytest.mark.parametrize("chunk", [None, 50, 5_000, 1 << 17])
def test_int32_masks_are_the_int64_hash_bit_for_bit(chunk):
    """scaled_keep_masks in blocks of any size (a block within a trial's rows, whole trials) is
    keep_mask / (1 - p), the single-trial engine's masks."""
    batch, units = 13, 37
    keys = torch.tensor([randomness.dropout_key(seed, 2, 5) for seed in range(4)])
    p = torch.tensor([0.1, 0.3, 0.5, 0.9])
    expected = randomness.keep_mask(randomness.counter_grid(batch, units), keys.view(-1, 1, 1), p.view(-1, 1, 1))
    out = torch.empty(4, batch, units)
    randomness.scaled_keep_masks(out, randomness.int32_grid(batch, units), keys, p, chunk)
    assert torch.equal(out, expected.float() / (1 - p.view(-1, 1, 1)))
