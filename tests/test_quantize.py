"""Weight and activation quantisation against the reference BitLinear formulas."""

import numpy as np
import torch

from tritium.golden.ternary import CODE_NEG, CODE_POS, CODE_ZERO
from tritium.golden.quantize import (quantize_activations, quantize_weights,
                                   quantize_weights_simple)


def test_weight_ties_round_half_to_even():
    # mean|W| = 1, so s_w = 1 and the products are the weights themselves
    w = torch.tensor([[0.5, -0.5, 1.5, -1.5], [0.0, 0.25, -0.75, 0.5]])
    w = w / w.abs().mean()
    codes, scale = quantize_weights(w)
    expect = (w * scale).tolist()
    assert codes.dtype == np.uint8 and codes.shape == (2, 4)
    # reference: clamp(round(W * s_w), -1, 1) + 1, by hand for these products
    by_hand = [[CODE_ZERO if abs(t) <= 0.5 else (CODE_POS if t > 0 else CODE_NEG)
                for t in row] for row in expect]
    assert codes.tolist() == by_hand


def test_weight_scale_and_floor():
    w = torch.tensor([[2.0, -2.0, 0.0, 0.0]])  # mean|W| = 1
    codes, scale = quantize_weights(w)
    assert scale == 1.0 and codes.tolist() == [[CODE_POS, CODE_NEG, CODE_ZERO, CODE_ZERO]]
    codes, scale = quantize_weights(torch.zeros(3, 3))
    assert np.isclose(scale, 1e5, rtol=1e-6) and (codes == CODE_ZERO).all()


def test_fast_quantiser_equals_reference_formula_on_bf16():
    g = torch.Generator().manual_seed(11)
    w = (torch.randn(96, 130, generator=g) * 0.05).to(torch.bfloat16)
    s = 1.0 / w.float().abs().mean().clamp(min=1e-5)
    ref = ((w.float() * s).round().clamp(-1, 1) + 1).to(torch.uint8).numpy()
    for fn in (quantize_weights, quantize_weights_simple):
        codes, scale = fn(w)
        assert np.array_equal(codes, ref)
        assert scale == float(s)


def test_activation_quantisation_by_hand():
    x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]])
    q, s = quantize_activations(x)
    assert q.dtype == torch.int8
    # s = 127/2 = 63.5: 63.5 -> 64 (half to even), -127, 31.75 -> 32
    assert q[0].tolist() == [64, -127, 32]
    assert s[0, 0].item() == 63.5
    # an all-zero token uses the 1e-5 floor and stays zero
    assert q[1].tolist() == [0, 0, 0] and np.isclose(s[1, 0].item(), 127e5)
