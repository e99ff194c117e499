"""The CUDA path (psa.cuda) against the batched engine. Its step logic is device-agnostic, so
the CPU runs it eagerly (and the fused kernels under Triton's interpreter, when triton is
installed); graph capture and the engine equivalence on a GPU run only where CUDA is."""

import gc
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # must precede the first import of triton

import pytest  # noqa: E402

from helpers import subset  # noqa: E402
from psa import PSAError, batched, cuda, engine, kernels  # noqa: E402
from psa.architecture import Architecture  # noqa: E402
from psa.modes import MODES  # noqa: E402
from psa.trial import Hyper, TrialSpec  # noqa: E402

if kernels.triton is not None and os.environ.get("TRITON_INTERPRET") == "1":
    import test_kernels  # noqa: F401  (its fix of Triton's interpreter for NumPy >= 2.4)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # where the fused kernels can run
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_kernels = pytest.mark.skipif(not kernels.available(torch.device(DEVICE)), reason="needs triton")
HYPER = Hyper(lr=2e-3, batch_size=64, dropout=0.3)


@pytest.fixture(scope="module")
def data64(mnist):
    return subset(mnist, train=450, val=300, dtype=torch.float64)  # 7 full batches and one of 2


def stack_of(arch: str, data, family="simplemlp", hyper=HYPER):
    specs = batched.order_specs([TrialSpec(Architecture.parse(arch), family, mode, 0, 11 + i, hyper)
                                 for i, mode in enumerate(MODES)])
    stack = batched.Stack(specs, data.x_train.device, data.x_train.dtype)
    for loop in (1, 2):  # an ablated second loop, so LKG copies and fresh moments are exercised
        stack.active.copy_(stack.lkg)
        if loop > 1:
            batched.ablate(stack, loop)
        yield stack, loop


def trained(arch, data, epoch, family="simplemlp"):
    """stack.active after each of two meta-loops run with `epoch`."""
    out = []
    for stack, loop in stack_of(arch, data, family):
        epoch(stack, data, loop)
        out.append(stack.active.clone())
        stack.lkg.copy_(stack.active)
    return out


def relative(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("arch, family", [("[2*8, 1*5]", "simplemlp"), ("[1*8, 2*6]", "resmlp")])
def test_static_buffer_steps_equal_the_eager_loop_bit_for_bit(data64, arch, family):
    """Orders, dropout keys, bias corrections and the partial batch all read from device-side
    buffers indexed by the step counter: the same numbers as batched.train_loop, exactly."""
    def steps(stack, data, loop):
        cuda.train_loop(stack, data, loop, graphs=False, fused=False)

    for ours, reference in zip(trained(arch, data64, steps, family), trained(arch, data64, batched.train_loop, family)):
        assert torch.equal(ours, reference)


def test_steps_are_rebuilt_when_the_data_changes(data64):
    smaller = subset(data64, train=200, val=100, dtype=torch.float64)
    for data in (data64, smaller, data64):
        stack, loop = next(stack_of("[1*6]", data))
        reference = stack.active.clone()
        cuda.train_loop(stack, data, loop, graphs=False, fused=False)
        ours = stack.active.clone()
        stack.active.copy_(reference)
        batched.train_loop(stack, data, loop)
        assert torch.equal(ours, stack.active)


def test_cached_steps_die_with_their_stack(data64):
    stack, loop = next(stack_of("[1*6]", data64))
    cuda.train_loop(stack, data64, loop, graphs=False, fused=False)
    assert stack in cuda._steps
    del stack
    gc.collect()
    assert len(cuda._steps) == 0


@needs_kernels
def test_fused_steps_follow_the_eager_loop(data64):
    def fused(stack, data, loop):
        cuda.train_loop(stack, data, loop, graphs=False, fused=True)

    small = subset(data64, train=130, val=100, dtype=torch.float64).to(DEVICE, torch.float64)  # the interpreter is slow
    for ours, reference in zip(trained("3*4", small, fused), trained("3*4", small, batched.train_loop)):
        assert relative(ours, reference) < 1e-12


@needs_kernels
def test_fused_accuracy_equals_the_batched_one(data64):
    data = data64.to(DEVICE, torch.float64)
    stack, _ = next(stack_of("4*3", data))
    stack.lkg.add_(torch.randn_like(stack.lkg) * 0.3)
    assert cuda.accuracy(stack, stack.lkg, data.x_val, data.y_val, 100) == \
        batched.accuracy(stack, stack.lkg, data.x_val, data.y_val, 100)


def test_bf16_autocast_trains(data64, monkeypatch):
    """bf16 is an opt-in approximation: it must run the same steps and stay near float32."""
    data32 = subset(data64, train=450, val=300, dtype=torch.float32)
    results = {}
    for mode in ("fp32", "bf16"):
        monkeypatch.setenv("PSA_PRECISION", mode)
        stack, loop = next(stack_of("[2*16]", data32))
        cuda.train_loop(stack, data32, loop, graphs=False, fused=False)
        results[mode] = stack.active.clone()
    assert results["bf16"].isfinite().all()
    assert 0 < relative(results["bf16"], results["fp32"]) < 0.1


def test_unknown_precision_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PSA_PRECISION", "fp8")
    with pytest.raises(PSAError, match="PSA_PRECISION"):
        cuda.precision()


# ------------------------------------------------------------------------------------- CUDA only

@needs_cuda
@pytest.mark.parametrize("arch", ["[2*8, 1*5]", "3*4"])
def test_graphs_follow_the_eager_engine_on_cuda(data64, arch):
    gpu = data64.to("cuda", torch.float64)
    for ours, reference in zip(trained(arch, gpu, cuda.train_loop), trained(arch, gpu, batched.train_loop)):
        assert relative(ours, reference) < 1e-12


@needs_cuda
@pytest.mark.parametrize("arch", ["6*1", "5*2", "4*4", "3*13", "3*32"])
def test_fused_graphs_in_float32_on_cuda(data64, arch):
    gpu = data64.to("cuda", torch.float32)
    for ours, reference in zip(trained(arch, gpu, cuda.train_loop), trained(arch, gpu, batched.train_loop)):
        assert relative(ours, reference) < 1e-5


@needs_cuda
@pytest.mark.parametrize("family, arch", [("simplemlp", "[2*8, 1*5]"), ("resmlp", "[1*8, 2*6]"),
                                          ("simplemlp", "3*4")])
def test_batched_engine_follows_the_single_trial_engine_on_cuda(data64, family, arch):
    """tests/test_batched.py's float64 equivalence, with both engines on the GPU (the batched one
    through CUDA graphs, and the fused kernels for 3*4)."""
    gpu = data64.to("cuda", torch.float64)
    specs = [TrialSpec(Architecture.parse(arch), family, mode, t, 40 + t, HYPER) for mode in MODES for t in range(2)]
    loops = 3
    results = batched.train_trials(specs, gpu, loops, device="cuda", dtype=torch.float64)
    for spec, result in zip(specs, results):
        state = engine.new_state(spec, device="cuda", dtype=torch.float64)
        alone = engine.run_loops(spec, gpu, state, loops)
        assert [(r.score, r.improved, r.ablated) for r in result.history] == \
               [(r.score, r.improved, r.ablated) for r in alone], spec.mode
        assert (result.bounty, result.bounty_loop) == (state.bounty, state.bounty_loop)
        assert result.test_accuracy == engine.accuracy(state.lkg, gpu.x_test, gpu.y_test)
