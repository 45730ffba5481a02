"""SNASNet's Hamming spike kernel: the Triton kernel and the torch path against the authors'
arithmetic (the reference), the reference against a hand-computed case, the accumulated score
against numpy's slogdet, singular kernels and bad input."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import Tensor

from conftest import assert_close, assert_equal
from snnzoo.kernels.spike_kernel import (HammingKernelScorer, hamming_kernel,
                                         hamming_kernel_reference, pairwise_hamming,
                                         pairwise_hamming_reference)

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.bool]


def _spikes(shape, device, dtype=torch.float32, seed=0):
    """Binary spikes [B, ...] whose rows fire at rates spread over (0, 0.6)."""
    generator = torch.Generator().manual_seed(seed)
    rates = torch.rand((shape[0],) + (1,) * (len(shape) - 1), generator=generator) * 0.6
    return (torch.rand(shape, generator=generator) < rates).to(device, dtype)


def _term_tolerance(neuron_count):
    """float32 rounding of terms of size ~N (one ulp of a rate may differ on CUDA)."""
    return 2e-6 * neuron_count, 1e-6


def _compare_with_reference(spikes, backend):
    what = f"{backend} {spikes.dtype} {tuple(spikes.shape)}"
    assert_equal(pairwise_hamming(spikes, backend), pairwise_hamming_reference(spikes),
                 f"{what} H")
    expected = hamming_kernel_reference(spikes).double()
    assert_close(hamming_kernel(spikes, backend), expected,
                 *_term_tolerance(spikes[0].numel()), f"{what} K term")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("neuron_count", [1, 100, 1000])
@pytest.mark.parametrize("batch_size", [1, 7, 33])
def test_triton_matches_reference(batch_size, neuron_count, dtype, device):
    _compare_with_reference(_spikes((batch_size, neuron_count), device, dtype), "triton")


@pytest.mark.parametrize("shape", [(7, 4099), (256, 40), (5, 3, 7, 11)])
def test_triton_odd_sizes(shape, device):
    _compare_with_reference(_spikes(shape, device), "triton")


@pytest.mark.parametrize("splits", [1, 2, 3, 8])
def test_triton_neuron_slices_add_up_exactly(splits, device):
    """The Gram kernel's programs each sum one slice of the neurons (whole loop steps of 128;
    the last slice partial) and add it atomically: H stays exact."""
    from snnzoo.kernels.spike_kernel.triton_kernels import _launch
    spikes = _spikes((70, 1000), device)
    hamming = torch.empty((70, 70), dtype=torch.int64, device=device)
    _launch(spikes, hamming, "hamming", splits=splits)
    assert_equal(hamming, pairwise_hamming_reference(spikes), f"H with {splits} neuron slices")


@pytest.mark.parametrize("backend", ["triton", "torch", "auto"])
@pytest.mark.parametrize("layout", ["transposed", "batch-strided", "channels-last", "neuron-major"])
def test_non_contiguous_input(layout, backend, device):
    if layout == "transposed":
        spikes = _spikes((9, 40, 13), device).transpose(1, 2)
    elif layout == "batch-strided":
        spikes = _spikes((18, 300), device)[::2]
    elif layout == "channels-last":
        spikes = _spikes((9, 4, 6, 5), device).to(memory_format=torch.channels_last)
    else:
        spikes = _spikes((300, 9), device).t()  # [B, N] with the batch contiguous
    assert not spikes.is_contiguous()
    _compare_with_reference(spikes, backend)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_torch_path_matches_reference(dtype, device):
    _compare_with_reference(_spikes((33, 1000), device, dtype), "torch")


@pytest.mark.parametrize("binary", [False, True])
def test_torch_path_adds_neuron_blocks_exactly(binary, monkeypatch):
    """The CPU Gram matrix sums int8 blocks of the neurons: blocks that do not divide N and
    a last short block add up to the reference's H and K exactly."""
    from snnzoo.kernels.spike_kernel import torch_kernels
    monkeypatch.setattr(torch_kernels, "GRAM_BLOCK_NEURONS", 7)
    spikes = _spikes((9, 3, 11), "cpu")  # 33 neurons: blocks of 7, then 5
    assert_equal(pairwise_hamming(spikes, "torch"), pairwise_hamming_reference(spikes), "H")
    scorer = HammingKernelScorer("torch")
    scorer.add(spikes, binary=binary)
    monkeypatch.setattr(torch_kernels, "GRAM_BLOCK_NEURONS", 1 << 20)  # one block
    whole = HammingKernelScorer("torch")
    whole.add(spikes, binary=binary)
    assert_equal(scorer.kernel, whole.kernel, "K from blocks vs one block")


def test_torch_path_without_int8_products_gives_the_same_kernel(monkeypatch):
    """Where torch has no int8 matrix product (or off the CPU) the Gram matrix is a float32
    product, exact below 2^24 neurons: the same H and K."""
    from snnzoo.kernels.spike_kernel import torch_kernels
    spikes = _spikes((12, 4, 6, 5), "cpu")
    kernels = []
    for available in (True, False):
        monkeypatch.setattr(torch_kernels, "_cpu_int8_products", lambda: available)
        assert_equal(pairwise_hamming(spikes, "torch"), pairwise_hamming_reference(spikes), "H")
        kernels.append(hamming_kernel(spikes, "torch"))
    assert_equal(kernels[1], kernels[0], "K from float32 vs int8 products")


def test_spikes_are_what_is_positive(device):
    """Like the authors' (out > 0): any positive value spikes, zero and negatives do not."""
    values = torch.tensor([[0.5, -1.0, 0.0, 2.0], [1.0, 0.0, -0.0, 0.0]], device=device)
    expected = torch.tensor([[0, 1], [1, 0]], device=device)  # rows 1001 and 1000; != 0 gives 2
    for backend in ("triton", "torch"):
        assert_equal(pairwise_hamming(values, backend), expected, f"{backend} H")


def test_hand_computed_example(device):
    # Worked from the authors' hook (model_snn.py, computing_K_eachtime, lines 59-68), not
    # from the kernel: x = [[1, 0, 1], [0, 0, 1]], N = 3, n = (2, 1), H = [[0, 1], [1, 0]]
    # sparsity s = n / N = (2/3, 1/3)
    # norm_K = (s (1 - s)^T + (1 - s) s^T) N:  [0,1]: (4/9 + 1/9) 3 = 5/3;  [0,0]: (2/9 + 2/9) 3 = 4/3
    # rescale = 0.5 / (norm_K + 1e-3):  [0,1]: 0.5 / 1.667667 = 0.299820
    # term = N - rescale H: 3 on the diagonal (H = 0), 3 - 0.299820 = 2.700180 off it
    # det = 9 - 2.700180^2 = 1.709029, score = log 1.709029 = 0.535925
    spikes = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], device=device)
    off_diagonal = 2.700180
    expected = torch.tensor([[3.0, off_diagonal], [off_diagonal, 3.0]], dtype=torch.float64)
    # tolerance: the hand values carry 6 decimals; float32 terms of size 3 round at 2.4e-7
    assert_equal(pairwise_hamming_reference(spikes).cpu(), torch.tensor([[0, 1], [1, 0]]), "H")
    assert_close(hamming_kernel_reference(spikes).cpu(), expected, 1e-6, 0, "reference term")
    for backend in ("triton", "torch"):
        scorer = HammingKernelScorer(backend)
        scorer.add(spikes)
        scorer.add(spikes)  # K / count is the same term
        assert scorer.count == 2
        assert_close(scorer.kernel.cpu() / 2, expected, 1e-6, 0, f"{backend} K / count")
        assert scorer.score() == pytest.approx(0.535925, abs=2e-6)


def _layer_outputs(batch_size, device):
    """Spikes of a few layers and timesteps, conv-shaped and flat, of differing dtypes."""
    shapes = [(batch_size, 4, 6, 6), (batch_size, 300), (batch_size, 2, 7, 5), (batch_size, 1000)]
    dtypes = [torch.float32, torch.float16, torch.bool, torch.bfloat16]
    return [_spikes(shape, device, dtype, seed) for seed, (shape, dtype)
            in enumerate(zip(shapes * 2, dtypes * 2))]


@pytest.mark.parametrize("backend", ["triton", "torch", "auto"])
def test_accumulated_score_matches_numpy(backend, device):
    """K over several adds and its score, against the authors' host-side float64 numpy sum."""
    outputs = _layer_outputs(33, device)
    numpy_kernel = np.zeros((33, 33))
    scorer = HammingKernelScorer(backend)
    for spikes in outputs:
        numpy_kernel += hamming_kernel_reference(spikes).cpu().numpy()
        scorer.add(spikes)
    assert scorer.count == len(outputs) and scorer.kernel.dtype == torch.float64
    atol, rtol = _term_tolerance(1000)
    assert_close(scorer.kernel.cpu(), torch.from_numpy(numpy_kernel), atol * len(outputs), rtol,
                 f"{backend} accumulated K")
    sign, expected = np.linalg.slogdet(numpy_kernel / len(outputs))
    assert sign != 0
    assert scorer.score() == pytest.approx(expected, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("layout", ["contiguous", "channels-last"])
def test_binary_spikes_as_they_are_give_the_same_kernel(layout, monkeypatch):
    # add(binary=True) lets the torch path multiply 0/1 float32 spikes without a thresholded
    # copy (none is made); K must be the same to the last bit, also for spikes in NHWC order.
    backend, device = "torch", torch.device("cpu")
    spikes = [_spikes((12, 4, 6, 5), device, seed=seed) for seed in range(3)]
    if layout == "channels-last":
        spikes = [s.to(memory_format=torch.channels_last) for s in spikes]
    kernels, thresholded = [], []
    original_gt = Tensor.__gt__
    monkeypatch.setattr(Tensor, "__gt__", lambda a, b: thresholded.append(1) or original_gt(a, b))
    for binary in (False, True):
        thresholded.clear()
        scorer = HammingKernelScorer(backend)
        for s in spikes:
            scorer.add(s, binary=binary)
        kernels.append(scorer.kernel)
        assert bool(thresholded) != binary, f"binary={binary}: thresholded {len(thresholded)}x"
    assert_equal(kernels[1], kernels[0], "K with binary=True vs thresholded")


def test_forward_hook_adds_every_output(device):
    scorer = HammingKernelScorer()
    module = torch.nn.Identity()
    module.register_forward_hook(scorer.hook)
    spikes = _spikes((5, 20), device)
    module(spikes)
    module((spikes, None))  # a tuple output: its first element, as in the authors' hook
    assert scorer.count == 2
    assert_close(scorer.kernel, 2 * hamming_kernel_reference(spikes).double(), 1e-5, 1e-6, "K")


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("case, batch", [("silent", 6), ("repeated-row", 6),
                                         ("repeated-row", 64)])
def test_singular_kernel_scores_minus_infinity(case, batch, backend, device):
    # Silent layers: p = q = 0 and H = 0, so every term is N: K = N ones, rank 1.
    # A repeated input row gives two identical rows of K (at B = 64 LU's roundoff left a
    # finite determinant, which scored as if it meant something).
    scorer = HammingKernelScorer(backend)
    for seed in range(3):
        spikes = _spikes((batch, 50), device, seed=seed)
        if case == "silent":
            spikes.zero_()
        else:
            spikes[4] = spikes[1]
        scorer.add(spikes)
    with pytest.warns(RuntimeWarning, match="singular"):
        assert scorer.score() == -math.inf


def test_non_finite_or_empty_kernel_scores_minus_infinity(device):
    scorer = HammingKernelScorer()
    with pytest.warns(RuntimeWarning, match="no LIF output"):
        assert scorer.score() == -math.inf
    scorer.add(_spikes((4, 30), device))
    scorer.kernel[1, 2] = math.nan
    with pytest.warns(RuntimeWarning, match="non-finite"):
        assert scorer.score() == -math.inf


def test_a_regular_score_does_not_warn(device):
    scorer = HammingKernelScorer()
    scorer.add(_spikes((6, 200), device))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isfinite(scorer.score())


def test_bad_input_is_refused_with_its_shape(device):
    scorer = HammingKernelScorer()
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        scorer.add(torch.ones(10, device=device))
    scorer.add(_spikes((4, 10), device))
    with pytest.raises(ValueError, match=r"shape \(5, 10\).*batch size 5.*batch size 4"):
        scorer.add(_spikes((5, 10), device))
    with pytest.raises(ValueError, match=r"shape \(4, 0\) are empty"):
        scorer.add(torch.ones(4, 0, device=device))
    with pytest.raises(ValueError, match="int32"):
        pairwise_hamming(torch.ones(3, 4, dtype=torch.int32, device=device))
    with pytest.raises(ValueError, match="backend='cuda'"):
        HammingKernelScorer(backend="cuda")
    scorer.reset()
    scorer.add(_spikes((5, 10), device))  # a new batch after reset() is fine
    assert scorer.count == 1


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        pairwise_hamming(torch.ones(3, 4), "triton")


def test_a_failed_first_add_leaves_the_scorer_empty(monkeypatch):
    # K was allocated before the term was added: after a first add that failed, score()
    # divided the zero K by count 0 and warned of non-finite entries, and a batch of another
    # size was refused as if K had been started.
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    scorer = HammingKernelScorer("triton")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        scorer.add(_spikes((4, 30), "cpu"))
    assert scorer.kernel is None and scorer.count == 0
    with pytest.warns(RuntimeWarning, match="no LIF output"):
        assert scorer.score() == -math.inf
    scorer.backend = "torch"
    scorer.add(_spikes((5, 30), "cpu"))
    assert scorer.kernel.shape == (5, 5) and scorer.count == 1


@pytest.mark.parametrize("neurons", [1, 3, 7, 16385])
def test_narrow_neuron_blocks_are_exact(neurons, device):
    # The CPU path multiplies blocks of 16384 neurons in int8; torch._int_mm misread blocks one
    # neuron wide.
    spikes = _spikes((5, neurons), device, seed=2)
    expected = hamming_kernel_reference(spikes.double())
    for backend in ("torch", "triton"):
        assert_close(hamming_kernel(spikes, backend), expected, 1e-6 * max(neurons, 1), 1e-7,
                     f"K, N={neurons}, {backend}")


def test_spike_hook_adds_each_timestep_of_a_multistep_neuron():
    from snnzoo.layers import LIF
    lif = LIF()
    scorer = HammingKernelScorer()
    lif.register_spike_hook(scorer.spike_hook)
    spikes = lif(torch.randn(3, 6, 40, generator=torch.Generator().manual_seed(0)) * 2)
    assert scorer.count == 3 and scorer.kernel.shape == (6, 6)
    expected = sum(hamming_kernel_reference(spikes_t).double() for spikes_t in spikes)
    assert_close(scorer.kernel, expected, 1e-4, 1e-6, "K over the three steps")
