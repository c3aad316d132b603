"""kernels/conv_tiled.py (dense one-group conv on register tiles that read the input in place) against a
float64 convolution written out here, on shapes around its edges (8-pixel and 32-channel tiles, blocks of
channels, strides, padding, 1x1), and the order of its sums: an image's result has the same bits alone or in a
batch, split between threads or not, and whatever the number of output channels around it."""

from __future__ import annotations

import numpy as np
import pytest

from snnsim.kernels import gemm
from snnsim.kernels.conv import conv_out_size
from snnsim.kernels.conv_tiled import CB_ROWS, conv2d_tiled, pack_weights

pytestmark = pytest.mark.skipif(not gemm.USE, reason="the register tile is used only where Numba compiles AVX-512")

NEVER, ALWAYS = 1 << 62, 0   # split_above: never split between threads, split from the smallest size


def tiled(x, w, b, s, p, split_above):
    """conv2d_tiled into an output allocated here (conv2d_dense does it in the package), NaN-filled so that an
    output the kernel leaves unwritten fails the comparisons."""
    HO, WO = conv_out_size(x.shape[2], w.shape[2], s, p), conv_out_size(x.shape[3], w.shape[3], s, p)
    out = np.full((x.shape[0], w.shape[0], HO, WO), np.nan, np.float32)
    return conv2d_tiled(x, w, b, out, s, s, p, p, split_above)


def conv_float64(x, w, b, sh, sw, ph, pw):
    """The definition: out[n, o, i, j] = b[o] + sum over c, kh, kw of xpad[n, c, i sh + kh, j sw + kw] w[o, c, kh, kw],
    in float64 (exact products of float32, sums far more precise than float32's)."""
    B, C, H, W = x.shape
    O, _, KH, KW = w.shape
    xp = np.zeros((B, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    HO, WO = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    out = np.zeros((B, O, HO, WO)) + (b.astype(np.float64)[:, None, None] if b.size else 0.0)
    absum = np.zeros((B, O, HO, WO)) + (np.abs(b.astype(np.float64))[:, None, None] if b.size else 0.0)
    for kh in range(KH):
        for kw in range(KW):
            patch = xp[:, :, kh:kh + sh * (HO - 1) + 1:sh, kw:kw + sw * (WO - 1) + 1:sw]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, kh, kw].astype(np.float64))
            absum += np.einsum("bchw,oc->bohw", np.abs(patch), np.abs(w[:, :, kh, kw]).astype(np.float64))
    return out, absum


CASES = [  # B, C, O, H, W, KH, KW, stride, padding
    (2, 64, 64, 16, 16, 3, 3, 1, 1),   # the ResNet's 3x3: four blocks of 16 channels, two 32-channel panels
    (3, 40, 70, 7, 9, 3, 3, 1, 1),     # a partial block (8 of 16 channels), a partial panel, 63 pixels
    (2, 5, 9, 11, 6, 3, 3, 2, 1),      # stride 2; output channels not a multiple of 8
    (1, 64, 128, 8, 8, 1, 1, 1, 0),    # pointwise (T-RevSNN): one block of all 64 channels
    (2, 3, 16, 13, 13, 5, 3, 2, 2),    # rectangular kernel, K = 45
    (1, 200, 8, 3, 3, 1, 1, 1, 0),     # 1x1 with 200 channels: two blocks of 144, fewer pixels than a tile
    (2, 2, 33, 4, 5, 4, 5, 1, 0),      # kernel as wide as the image: one output column
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_the_float64_convolution(case, bias):
    B, C, O, H, W, KH, KW, s, p = case
    rng = np.random.default_rng(C * 1000 + O + H)
    x = rng.standard_normal((B, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, KH, KW)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32) if bias else np.zeros(0, np.float32)
    ref, absum = conv_float64(x, w, b, s, s, p, p)
    got = tiled(x, w, b, s, p, NEVER)
    assert got.dtype == np.float32 and got.shape == ref.shape
    # float32 sums of K + 1 terms: |error| <= (K + 1) eps sum |terms| (loose; typical errors are far smaller)
    bound = (C * KH * KW + 1) * np.finfo(np.float32).eps * absum
    assert np.all(np.abs(got - ref) <= bound)
    assert np.abs(got - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())


def test_spikes_as_uint8_give_the_same_bits_as_float32():
    rng = np.random.default_rng(1)
    x = (rng.random((3, 24, 10, 10)) < 0.2).astype(np.uint8)
    w = rng.standard_normal((40, 24, 3, 3)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    np.testing.assert_array_equal(tiled(x, w, b, 1, 1, NEVER),
                                  tiled(x.astype(np.float32), w, b, 1, 1, NEVER))


def test_the_order_of_the_sums_depends_only_on_the_layer():
    """Each output's sum runs in an order fixed by (C, KH, KW): the same bits for an image alone or in a batch,
    split between threads or not, and for an output channel whichever panel and tile it falls in."""
    rng = np.random.default_rng(2)
    B, C, O = 5, 48, 72
    x = rng.standard_normal((B, C, 9, 9)).astype(np.float32)
    w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    whole = tiled(x, w, b, 1, 1, NEVER)
    np.testing.assert_array_equal(tiled(x, w, b, 1, 1, ALWAYS), whole)
    alone = np.concatenate([tiled(x[i:i + 1], w, b, 1, 1, NEVER) for i in range(B)])
    np.testing.assert_array_equal(alone, whole)
    for o0, o1 in ((0, 5), (30, 72), (33, 34)):
        part = tiled(x, np.ascontiguousarray(w[o0:o1]), b[o0:o1], 1, 1, NEVER)
        np.testing.assert_array_equal(part, whole[:, o0:o1])


def test_channels_beyond_a_block_are_summed_block_by_block():
    """Hand derivation: a 1x1 conv over two blocks of CB_ROWS channels, all weights 1, input 1 in channel 0 and
    2^-24 in the first two channels of the second block. One float32 chain would give 1 (1 + 2^-24 rounds to
    1, twice); the blocks give 1 + (2^-24 + 2^-24) = 1 + 2^-23, the next float32 after 1."""
    C = 2 * CB_ROWS
    x = np.zeros((1, C, 2, 3), np.float32)
    x[0, 0] = 1.0
    x[0, CB_ROWS:CB_ROWS + 2] = 2.0 ** -24
    w = np.ones((3, C, 1, 1), np.float32)
    out = tiled(x, w, np.zeros(0, np.float32), 1, 0, NEVER)
    assert np.all(out == np.float32(1.0 + 2.0 ** -23))


def test_packed_weights_layout():
    w = np.arange(40 * 3 * 2 * 2, dtype=np.float32).reshape(40, 3, 2, 2)
    wp = pack_weights(w).reshape(2, 12, 32)
    assert wp[0, 5, 7] == w[7].reshape(-1)[5] and wp[1, 11, 7] == w[39].reshape(-1)[11]
    assert np.all(wp[1, :, 8:] == 0.0)
