"""The fused CPU chains (psa.engine.batched.native, chain.cpp) against psa.engine.batched.ops'
forward and backward: float64 to 1e-12 (only the summation order inside each small product
differs; the dropout masks chain.cpp draws itself are step.dropout_masks' bit for bit, or the
results would differ in the first digit), float32 to 1e-5, every mode, every chain width, and
trials that do not depend on the thread count."""

import subprocess
import sys

import pytest
import torch

from helpers import chain_stack, chain_step, gradients, relative, subset
from psa.engine.batched import native, ops
from psa.engine.batched.stack import CHAIN_MAX_WIDTH
from psa.engine.batched.step import CPU_STEP, Steps, dropout_masks, loop_inputs, step_functions
from psa.errors import PSAError
from psa.sweeps.grid import check_engine
from psa.trial import randomness
from psa.trial.data import MEAN, NORMALISE, STD

pytestmark = pytest.mark.skipif(native.library(1) is None, reason="no C++ compiler to build chain.cpp")


def compare(stack, batch, step, tolerance):
    x, y, masks = chain_step(stack, batch, step)
    drop = chain_step(stack, batch, step, native.dropout)[2]
    ref_logits, ref_grad = gradients(stack, ops, x, y, masks)
    logits, grad = gradients(stack, native, x, y, drop)
    assert not grad.isnan().any()
    assert relative(logits, ref_logits) < tolerance
    for (w, b), (rw, rb) in zip(stack.layout.views(grad), stack.layout.views(ref_grad)):
        assert relative(w, rw) < tolerance or rw.norm() == w.norm() == 0
        assert relative(b, rb) < tolerance or rb.norm() == b.norm() == 0
    losses = [torch.zeros(len(stack.specs), dtype=stack.active.dtype) for _ in range(2)]
    ops.gradients(stack, x, y, masks, losses[0])
    native.gradients(stack, x, y, drop, losses[1])
    assert relative(losses[1], losses[0]) < tolerance
    assert relative(native.forward(stack, x), ops.forward(stack, x)[0]) < tolerance


@pytest.mark.parametrize("arch", ["5*1", "4*2", "3*5", "6*4", "3*12", "17*17", "2*32", "1*1", "1*32"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_step_matches_the_eager_one(arch, dtype):
    stack = chain_stack(arch, dtype, "cpu")
    assert native.supported(stack)
    for batch, step in ((50, 0), (7, 1), (37, 2)):  # batches that are and are not multiples of the lanes
        compare(stack, batch, step, 1e-12 if dtype == torch.float64 else 1e-5)


@pytest.mark.parametrize("arch", ["3*12", "2*16"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_cpu_without_avx512_computes_the_same_bits(dtype, arch):
    """chain.cpp's 64-byte vectors are one register where the CPU has AVX-512 and a pair of 32-byte
    halves where it has not: built both ways (the second with -mno-avx512f), a training step on
    pixel rows with dropout gives bit for bit the same logits, loss and gradients, at the widths
    where GCC 12 once fused a sum of two products one way in one build and the other way in the
    other (engine version 3). (On a CPU without AVX-512 both builds take the pair; the
    comparison is then of the build alone.)"""
    stack = chain_stack(arch, dtype, "cpu", modes=("none", "dropout", "hidden"))
    generator = torch.Generator().manual_seed(5)
    pixels = torch.randint(256, (300, 784), generator=generator, dtype=torch.uint8)
    index = torch.randint(300, (3, 71), generator=generator)
    _, y, drop = chain_step(stack, 71, 0, native.dropout)
    results = []
    for extra in ((), ("-mno-avx512f",)):
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(native, "FLAGS", (*native.FLAGS, *extra))
                native.library.cache_clear()
                stack.grad.fill_(float("nan"))  # every element must be written
                logits, loss = torch.empty(3, 71, 10, dtype=dtype), torch.zeros(3, dtype=dtype)
                native.gradients(stack, native.Rows(pixels, index, NORMALISE), y, drop, loss, logits)
                results.append((logits, stack.grad.clone(), loss))
        finally:
            native.library.cache_clear()
    assert not results[0][1].isnan().any()
    for one, pair in zip(*results):
        assert torch.equal(one, pair)


def test_the_data_sets_rows_read_in_place_are_the_gathered_batch():
    """Training reads each trial's samples from the training set itself (native.Rows): trial t
    takes order t % orders, as batch_inputs fans the gathered batch out."""
    stack = chain_stack("5*3", torch.float64, "cpu")  # 6 trials
    generator = torch.Generator().manual_seed(9)
    data = torch.randn(500, 784, dtype=torch.float64, generator=generator)
    index = torch.randint(500, (3, 45), generator=generator)
    y = torch.randint(10, (6, 45), generator=generator)
    gathered = data[index].index_select(0, torch.arange(6) % 3)
    ref_logits, ref_grad = gradients(stack, ops, gathered, y, None)
    logits, grad = gradients(stack, native, native.Rows(data, index), y, None)
    assert relative(logits, ref_logits) < 1e-12 and relative(grad, ref_grad) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pixel_rows_are_normalised_in_hidden_layer_0s_sums(dtype):
    """Training in float32 reads the training set's uint8 pixels: w . (scale p + shift) taken as
    scale (w . p) + shift sum(w), forward and backward, equals the layer on the normalised inputs
    (float64: to the last digits; float32: to its rounding, with psa.trial.data's own normalisation)."""
    stack = chain_stack("3*12", dtype, "cpu", modes=("none", "dropout", "hidden"))
    generator = torch.Generator().manual_seed(11)
    pixels = torch.randint(256, (400, 784), generator=generator, dtype=torch.uint8)
    index = torch.randint(400, (3, 37), generator=generator)
    y = torch.randint(10, (3, 37), generator=generator)
    scale, shift = NORMALISE
    normalised = pixels.double() * scale + shift if dtype == torch.float64 else (pixels.float() / 255 - MEAN) / STD
    ref_logits, ref_grad = gradients(stack, ops, normalised[index], y, None)
    logits, grad = gradients(stack, native, native.Rows(pixels, index, NORMALISE), y, None)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    assert relative(logits, ref_logits) < tolerance and relative(grad, ref_grad) < tolerance


def test_float32_training_on_a_cpu_reads_the_pixels(mnist):
    """Each step's rows: the pixels in float32, the normalised images in float64, through the
    epoch's sample orders at the step's position, with the labels of those samples."""
    assert torch.equal((mnist.pixels_train.float() / 255 - MEAN) / STD, mnist.x_train)
    for dtype, data in ((torch.float32, mnist.pixels_train), (torch.float64, mnist.x_train.double())):
        small = subset(mnist, train=600, dtype=dtype)
        stack = chain_stack("2*4", dtype, "cpu")
        steps = Steps([stack], small)
        steps.begin(3)
        epoch = steps.epochs[0]
        epoch.step.fill_(1)
        rows, y = steps.functions[0].inputs(stack, small, epoch, 50)
        assert rows.normalise == (NORMALISE if dtype == torch.float32 else None)
        assert torch.equal(rows.data, data[:600]) and torch.equal(rows.index, epoch.orders[:, 256:306])
        assert y is None and torch.equal(rows.labels, small.y_train)


def test_a_step_reads_its_labels_through_the_rows_index():
    """A training step reads each sample's label where it reads its row (Rows.labels): the same
    logits, loss and gradients, bit for bit, as from the labels gathered into (T, B) first."""
    stack = chain_stack("5*3", torch.float32, "cpu")  # 6 trials, 3 sample orders
    generator = torch.Generator().manual_seed(4)
    data = torch.randn(500, 784, generator=generator)
    index = torch.randint(500, (3, 45), generator=generator)
    labels = torch.randint(10, (500,), generator=generator)
    _, _, drop = chain_step(stack, 45, 0, native.dropout)
    gathered = labels[index].index_select(0, torch.arange(6) % 3)
    results = []
    for rows, y in ((native.Rows(data, index), gathered), (native.Rows(data, index, labels=labels), None)):
        logits, loss = torch.empty(6, 45, 10), torch.zeros(6)
        native.gradients(stack, rows, y, drop, loss, logits)
        results.append((logits, loss, stack.grad.clone()))
    for gathered_first, read_in_place in zip(*results):
        assert torch.equal(gathered_first, read_in_place)


def test_pixel_vectors_mark_the_non_zero_ones():
    rows = torch.zeros(3, 784, dtype=torch.uint8)
    rows[1, 17] = 3  # vector 1
    rows[2, [0, 783]] = 255  # vectors 0 and 48
    assert native.pixel_vectors(rows).tolist() == [0, 2, 1 + (1 << 48)]


@pytest.mark.parametrize("arch", ["4*2", "3*4", "2*16", "1*32"])
def test_zero_pixel_vectors_are_skipped_with_the_same_bits(mnist, arch):
    """Where Rows carries the rows' non-zero vectors, hidden layer 0 skips those that every row of
    a register block has 0 (widths of 4 and more): MNIST's own rows give the same logits, loss and
    gradients, bit for bit, as without; also where a trial's weights are not all finite (-inf
    times a zero pixel is NaN, which ReLU makes 0, where skipping it would leave the bias's +inf:
    nothing is skipped there)."""
    stack = chain_stack(arch, torch.float32, "cpu", modes=("none", "dropout", "hidden"))
    index = torch.randint(len(mnist.pixels_train), (3, 150), generator=torch.Generator().manual_seed(8))
    vectors = native.pixel_vectors(mnist.pixels_train)
    _, _, drop = chain_step(stack, 150, 0, native.dropout)
    logits_of_trial_1 = []
    for poisoned in (False, True):
        if poisoned:
            stack.active[1, 5] = -float("inf")  # of a pixel that is 0 in every digit
        results = []
        for known in (None, vectors):
            rows = native.Rows(mnist.pixels_train, index, NORMALISE, mnist.y_train, known)
            logits, loss = torch.empty(3, 150, 10), torch.zeros(3)
            native.gradients(stack, rows, None, drop, loss, logits)
            results.append([t.view(torch.int32) for t in (logits, loss, stack.grad.clone())])
        for without, skipping in zip(*results):
            assert torch.equal(without, skipping)
        logits_of_trial_1.append(results[0][0][1])
    assert not torch.equal(*logits_of_trial_1)


def test_a_trial_of_another_engine_version_is_refused_with_how_to_finish_it():
    for begun, how in ((1, "PSA_FUSED=0"), (2, "psa info"), (3, "psa info")):
        with pytest.raises(PSAError, match=f"begun by engine version {begun}, this psa runs version 4 .*{how}"):
            check_engine("2*8", {begun}, 4)
    check_engine("2*8", {4}, 4)


@pytest.mark.slow  # a library per width: 32 builds of a second or two on a fresh machine
def test_every_width_up_to_the_chain_limit_is_built():
    for width in range(1, CHAIN_MAX_WIDTH + 1):
        compare(chain_stack(f"3*{width}", torch.float64, "cpu", modes=("dropout", "hidden")), 20, 0, 1e-12)


def test_dropout_masks_reach_every_hidden_layer():
    stack = chain_stack("4*4", torch.float64, "cpu", modes=("dropout", "dropout", "none"))
    x, y, masks = chain_step(stack, 33)
    drop = chain_step(stack, 33, 0, native.dropout)[2]
    with_masks = gradients(stack, native, x, y, drop)
    without = gradients(stack, native, x, y, None)
    assert relative(with_masks[0], ops.forward(stack, x, masks)[0]) < 1e-12
    assert not torch.equal(with_masks[0][:2], without[0][:2])  # the dropout trials
    assert torch.equal(with_masks[0][2], without[0][2])  # the plain one is untouched
    assert torch.equal(with_masks[1][2], without[1][2])
    first_layer = stack.layout.views(with_masks[1])[0][0]
    assert not torch.equal(first_layer[:2], stack.layout.views(without[1])[0][0][:2])


@pytest.mark.parametrize("p", [0.0, 0.999999])
def test_extreme_dropout_probabilities_keep_every_unit_or_almost_none(p):
    stack = chain_stack("3*3", torch.float64, "cpu", modes=("dropout", "none"))
    stack.drop_p.fill_(p)
    x, y, masks = chain_step(stack, 40)
    drop = chain_step(stack, 40, 0, native.dropout)[2]
    assert (masks == 0).all() if p > 0.5 else (masks == 1).all()
    assert relative(gradients(stack, native, x, y, drop)[0], gradients(stack, ops, x, y, masks)[0]) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stacks_on_ops_take_chain_cpps_dropout_masks_which_are_torchs_bit_for_bit(dtype, mnist):
    """native.keep_masks, the masks of CPU stacks that train on ops (wider than a chain), a layer's
    units at a time as ops reads them, against step.dropout_masks' framework operations:
    probabilities from none to almost all dropped (the command line takes 0 <= p < 1), batches
    that end anywhere, one and two threads."""
    stack = chain_stack("3*40", dtype, "cpu", modes=("dropout",) * 5 + ("none",))
    assert Steps([stack], subset(mnist, dtype=dtype)).functions[0] == step_functions(stack) == CPU_STEP
    stack.drop_p.copy_(torch.tensor([0.0, 0.1, 1 / 3, 0.5, 0.999999]).view(-1, 1, 1))
    units, previous = stack.layout.topology.dropout_units, torch.get_num_threads()
    try:
        for batch, step, threads in ((256, 0, 2), (37, 3, 1), (1, 5, 2)):
            torch.set_num_threads(threads)
            keys = loop_inputs(stack, 2, batch, step + 1)[1][step]
            grid = randomness.int32_grid(batch, units)
            drawn, reference = native.keep_masks(stack, grid, keys, batch), dropout_masks(stack, grid, keys, batch)
            for first, stop in ((0, 40), (40, 80), (80, units), (37, 41), (0, units)):
                assert torch.equal(drawn(first, stop), reference[:, :, first:stop])
    finally:
        torch.set_num_threads(previous)
    assert (reference[0] == 1).all() and (reference[4] == 0).float().mean() > 0.999
    assert set(reference[3].unique().tolist()) == {0.0, 2.0}


def test_a_trial_does_not_depend_on_the_thread_count():
    stack = chain_stack("40*3", torch.float32, "cpu")
    x, y, drop = chain_step(stack, 64, 0, native.dropout)
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            loss = torch.zeros(len(stack.specs))
            logits, grads = gradients(stack, native, x, y, drop)
            native.gradients(stack, x, y, drop, loss)
            results.append((logits, grads, loss))
    finally:
        torch.set_num_threads(previous)
    for result in results[1:]:
        assert all(torch.equal(mine, first) for mine, first in zip(result, results[0]))


def test_a_trial_does_not_depend_on_which_thread_flushes_denormals():
    """OpenMP's threads keep the denormal setting of the thread that started them: started before
    train_stacks' torch.set_flush_denormal(True), they would keep denormal inputs where the
    calling thread reads them as 0, so a trial's gradients would depend on the thread that took
    it. chain.cpp gives every thread the caller's setting: 1 and 2 threads agree bit for bit."""
    code = (
        "import sys, torch\n"
        "sys.path.insert(0, 'tests')\n"
        "from helpers import chain_stack, chain_step, gradients\n"
        "from psa.engine.batched import native\n"
        "torch.set_num_threads(2)\n"
        "stack = chain_stack('3*4', torch.float32, 'cpu')\n"
        "x, y, drop = chain_step(stack, 64, 0, native.dropout)\n"
        "x = x * 1e-39  # denormal inputs\n"
        "kept = gradients(stack, native, x, y, drop)[1]  # also starts the threads, denormals kept\n"
        "torch.set_flush_denormal(True)\n"
        "results = []\n"
        "for threads in (1, 2):\n"
        "    torch.set_num_threads(threads)\n"
        "    results.append(gradients(stack, native, x, y, drop))\n"
        "bits = lambda t: t.view(torch.int32)  # compared as numbers, denormals would read as 0\n"
        "print(not torch.equal(bits(kept), bits(results[0][1])))\n"
        "print(all(torch.equal(bits(one), bits(two)) for one, two in zip(*results)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    flushing_matters, threads_agree = done.stdout.split()
    assert flushing_matters == "True" and threads_agree == "True"


def test_accuracy_through_the_chain_is_the_eager_accuracy():
    stack = chain_stack("8*2", torch.float64, "cpu")
    x = torch.randn(2500, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    y = torch.randint(10, (2500,), generator=torch.Generator().manual_seed(6))
    assert native.accuracy(stack, stack.active, x, y, 1000) == ops.accuracy(stack, stack.active, x, y, 1000)


def test_steps_take_the_chain_only_where_the_stack_has_one(mnist):
    data = subset(mnist, train=300, val=100)
    stacks = [chain_stack(arch, torch.float32, "cpu") for arch in ("6*3", "1*8", "[2*4, 1*8]")]
    steps = [functions.gradients for functions in Steps(stacks, data).functions]
    assert steps == [native.gradients, native.gradients, ops.gradients]


def test_without_a_compiler_psa_says_so_once_and_trains_eagerly(tmp_path):
    """CXX names no program and PATH holds no c++/g++: the build fails with one line, the stack
    trains through ops, and the sweep records engine version 1."""
    code = (
        "import torch\n"
        "from psa.engine.batched import native\n"
        "assert native.library(1) is None and native.library(2) is None\n"
        "print(native.engine_version('cpu'))\n"
    )
    env = {"PATH": str(tmp_path), "CXX": str(tmp_path / "missing-c++"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "narrow stacks train on the slower eager path" in lines[0]
    assert not list((tmp_path / "cache").rglob("*.so"))  # nothing half-built left behind
