"""The CUDA path (psa.engine.batched.cuda) against the eager steps. GraphSteps is device-agnostic but for
the capture, so the CPU runs it without graphs (and the fused kernels under Triton's interpreter,
when triton is installed); graph capture and the engine equivalence on a GPU run only where CUDA
is."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # must precede the first import of triton

import pytest  # noqa: E402

from helpers import relative, subset  # noqa: E402
from psa.engine import batched
from psa.engine import reference as engine  # noqa: E402
from psa.engine.batched import cuda, kernels, ops  # noqa: E402
from psa.engine.batched.stack import ablate  # noqa: E402
from psa.engine.batched.step import Steps  # noqa: E402
from psa.errors import PSAError
from psa.trial.architecture import Architecture  # noqa: E402
from psa.trial.modes import MODES  # noqa: E402
from psa.trial.spec import Hyper, TrialSpec  # noqa: E402

if kernels.triton is not None and os.environ.get("TRITON_INTERPRET") == "1":
    import test_kernels  # noqa: F401  (its fix of Triton's interpreter for NumPy >= 2.4)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # where the fused kernels can run
NO_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def needs_cuda(test):
    """Runs on a CUDA GPU only; marked `gpu`, the one thing CI may lack (tests/conftest.py)."""
    return pytest.mark.gpu(NO_GPU(test))


needs_kernels = pytest.mark.skipif(not kernels.available(torch.device(DEVICE)), reason="needs triton")
HYPER = Hyper(lr=2e-3, batch_size=64, dropout=0.3)


@pytest.fixture(scope="module")
def data64(mnist):
    return subset(mnist, train=450, val=300, dtype=torch.float64)  # 7 full batches and one of 2


def specs_of(arch: str, family="simplemlp", paired=False, hyper=HYPER):
    """The six modes, one trial each; `paired`: two trials per mode sharing seeds, as a sweep has."""
    if paired:
        return batched.order_specs(
            [TrialSpec(Architecture.parse(arch), family, mode, t, 30 + t, hyper) for mode in MODES for t in range(2)]
        )
    return batched.order_specs(
        [TrialSpec(Architecture.parse(arch), family, mode, 0, 11 + i, hyper) for i, mode in enumerate(MODES)]
    )


def stack_of(arch: str, data, family="simplemlp", paired=False):
    return batched.Stack.of(specs_of(arch, family, paired), data.x_train.device, data.x_train.dtype)


def epoch(steps, loop):
    steps.begin(loop)
    for batch in steps.batches:
        steps(batch)


def eager(stacks, data):
    """The reference: the steps of psa.engine.batched.step through ops, on whatever device the
    data is."""
    return Steps(stacks, data, fused=False)


def graph_steps(graphs=None, fused=None):
    return lambda stacks, data: cuda.GraphSteps(stacks, data, graphs=graphs, fused=fused)


def trained(arch, data, make_steps, family="simplemlp", paired=False):
    """stack.active after each of two meta-loops, stepped by make_steps([stack], data); the second
    loop ablated, so LKG copies and fresh moments are exercised."""
    stack, out = stack_of(arch, data, family, paired), []
    steps = make_steps([stack], data)
    for loop in (1, 2):
        stack.active.copy_(stack.lkg)
        if loop > 1:
            ablate(stack, loop)
        epoch(steps, loop)
        out.append(stack.active.clone())
        stack.lkg.copy_(stack.active)
    return out


@pytest.mark.parametrize(
    "arch, family, paired",
    [("[2*8, 1*5]", "simplemlp", False), ("[1*8, 2*6]", "resmlp", False), ("[2*8, 1*5]", "simplemlp", True)],
)
def test_prefetched_steps_equal_the_eager_ones_bit_for_bit(data64, arch, family, paired):
    """GraphSteps computes a loop's orders (one per seed where trials are paired, with shared
    input batches) and dropout keys a loop ahead on worker threads: the same numbers as the
    eager steps compute on the spot, exactly."""
    assert stack_of(arch, data64, family, paired).share_inputs == paired
    ours = trained(arch, data64, graph_steps(graphs=False, fused=False), family, paired)
    for mine, reference in zip(ours, trained(arch, data64, eager, family, paired)):
        assert torch.equal(mine, reference)


def group_of(archs, data, paired=True):
    return [stack_of(a, data, paired=paired) for a in archs]


@pytest.mark.parametrize("graphs", [False, pytest.param(True, marks=[pytest.mark.gpu, NO_GPU])])
def test_a_group_trains_each_stack_as_if_alone(data64, graphs):
    """Stacks of different architectures stepped together (on a GPU: branches of one graph on
    their own streams) end each loop exactly where each would alone."""
    data = data64.to(DEVICE)
    archs = ["[2*8, 1*5]", "[1*6]", "3*3"]
    group, alone = group_of(archs, data), group_of(archs, data)
    together = cuda.GraphSteps(group, data, graphs=graphs, fused=None if graphs else False)  # 3*3 fused on a GPU
    separate = [eager([stack], data) for stack in alone]
    for loop in (1, 2):
        epoch(together, loop)
        for steps in separate:
            epoch(steps, loop)
        for ours, reference in zip(group, alone):
            assert (
                relative(ours.active, reference.active) < 1e-12
                if graphs
                else torch.equal(ours.active, reference.active)
            )
        # The loss sums too: a capture's warm-up steps must leave no trace in them.
        ours_losses = [loss for losses in together.losses() for loss in losses]
        reference_losses = [loss for steps in separate for losses in steps.losses() for loss in losses]
        assert ours_losses == (pytest.approx(reference_losses, rel=1e-12) if graphs else reference_losses)


@needs_kernels
@pytest.mark.parametrize("paired", [False, True])  # paired: the first layer reads shared input batches
def test_fused_steps_follow_the_eager_loop(data64, paired):
    small = subset(data64, train=130, val=100, dtype=torch.float64).to(DEVICE, torch.float64)  # the interpreter is slow
    fused = trained("3*4", small, graph_steps(graphs=False, fused=True), paired=paired)
    for ours, reference in zip(fused, trained("3*4", small, eager, paired=paired)):
        assert relative(ours, reference) < 1e-12


@needs_kernels
def test_fused_accuracy_equals_the_batched_one(data64):
    data = data64.to(DEVICE, torch.float64)
    stack = stack_of("4*3", data)
    stack.lkg.add_(torch.randn_like(stack.lkg) * 0.3)
    assert cuda.accuracy(stack, stack.lkg, data.x_val, data.y_val, 100) == ops.accuracy(
        stack, stack.lkg, data.x_val, data.y_val, 100
    )


def test_bf16_autocast_trains(data64, monkeypatch):
    """bf16 is an opt-in approximation: it must run the same steps and stay near float32."""
    data32 = subset(data64, train=450, val=300, dtype=torch.float32)
    results = {}
    for mode in ("fp32", "bf16"):
        monkeypatch.setenv("PSA_PRECISION", mode)
        results[mode] = trained("[2*16]", data32, graph_steps(graphs=False, fused=False))[0]
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
    for ours, reference in zip(trained(arch, gpu, graph_steps()), trained(arch, gpu, eager)):
        assert relative(ours, reference) < 1e-12


@needs_cuda
@pytest.mark.parametrize("arch", ["6*1", "5*2", "4*4", "3*13", "3*32"])
def test_fused_graphs_in_float32_on_cuda(data64, arch):
    gpu = data64.to("cuda", torch.float32)
    for ours, reference in zip(trained(arch, gpu, graph_steps()), trained(arch, gpu, eager)):
        assert relative(ours, reference) < 1e-5


@needs_cuda
@pytest.mark.parametrize("family, arch", [("simplemlp", "[2*8, 1*5]"), ("resmlp", "[1*8, 2*6]"), ("simplemlp", "3*4")])
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
        assert [(r.score, r.improved, r.ablated) for r in result.history] == [
            (r.score, r.improved, r.ablated) for r in alone
        ], spec.mode
        assert (result.bounty, result.bounty_loop) == (state.bounty, state.bounty_loop)
        assert [r.loss for r in result.history] == pytest.approx([r.loss for r in alone], rel=1e-9, abs=0)
        assert result.test_accuracy == engine.accuracy(state.lkg, gpu.x_test, gpu.y_test)
