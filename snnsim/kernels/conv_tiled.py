"""Dense conv2d (one group) on register tiles that read the input in place: no im2col, no packed input.

out[b, o, p] = bias[o] + sum over k = (c, kh, kw) of xpad[c, i(p) * sh + kh, j(p) * sw + kw] * w[o, c, kh, kw],
where xpad is image b zero-padded (one copy per image) and p = i * WO + j an output pixel. Each register tile
(kernels/gemm.py's ``gather_tile``) computes 8 output pixels x 32 output channels: for every k it broadcasts
the 8 pixels' inputs, read where they lie in xpad (each pixel's base plus an offset table over k), and
multiplies them by a row of the weights packed 32 output channels wide. The im2col path (kernels/conv.py)
copies every input element KH * KW times into columns and then packs them again for the product; here the
only copies are the padding and the transposition of the result into [B, O, HO, WO].

Order of the sum (the same whatever the batch, the tiling or the threads): the input channels go in blocks
of CB_ROWS // (KH * KW) (at least one); within a block each output is one chain of fused multiply-adds from
zero in increasing k, the blocks' sums are added in increasing order, and the bias last. Blocks keep a block's
weights (up to CB_ROWS rows of 32 floats, 18 KiB) and its input planes in L1 while every pixel tile of an image uses
them (on the ResNet's 3x3 layers blocks of 72 to 576 terms measured within 3 % of each other).

Used where the tile is (kernels/gemm.py's ``USE``: AVX-512); elsewhere conv2d_dense multiplies with BLAS.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .gemm import MR, NR, gather_tile
from .layout import pad_image, pixels_to_planes
from .threads import split

CB_ROWS = 144   # terms of the sum per block: whole input channels, 16 of a 3x3 conv (see the module)


def pack_weights(w: np.ndarray) -> np.ndarray:
    """w[O, C, KH, KW] -> panels [ceil(O / 32), C * KH * KW, 32] (flat): panel q, row k = (c, kh, kw) holds
    w[32 q + j, c, kh, kw] for j < 32, zero past the last output channel."""
    O = w.shape[0]
    K = w[0].size
    n = -(-O // NR)
    wp = np.zeros((n * NR, K), np.float32)
    wp[:O] = w.reshape(O, K)
    return np.ascontiguousarray(wp.reshape(n, NR, K).transpose(0, 2, 1)).reshape(-1)


@njit(cache=True, fastmath=False, nogil=True)
def _conv_images(x, wp, bias, out, KH, KW, sh, sw, ph, pw, i0, i1):
    """Images [i0, i1) of the conv (see the module); bias has one entry per packed output channel."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    O, HO, WO = out.shape[1], out.shape[2], out.shape[3]
    Wp = W + 2 * pw
    P = (H + 2 * ph) * Wp
    K = C * KH * KW
    Op = bias.shape[0]
    L = HO * WO
    nt = (L + MR - 1) // MR
    offs = np.empty(K, np.int64)
    for c in range(C):
        for kh in range(KH):
            for kw in range(KW):
                offs[(c * KH + kh) * KW + kw] = c * P + kh * Wp + kw
    bases = np.empty(nt * MR, np.int64)       # pixels past the last repeat it: their rows of acc are dropped
    for t in range(nt * MR):
        q = min(t, L - 1)
        i = q // WO
        bases[t] = i * sh * Wp + (q - i * WO) * sw
    xpad = np.zeros(C * P, np.float32)
    acc = np.empty(nt * MR * Op, np.float32)  # [pixel, output channel]
    outf = out.reshape(out.size)
    KB = max(1, CB_ROWS // (KH * KW)) * KH * KW
    for bi in range(i0, i1):
        pad_image(x, bi, 0, C, ph, pw, xpad, Wp, P)
        for k0 in range(0, K, KB):
            kb = min(KB, K - k0)
            add = 1 if k0 > 0 else 0
            for q in range(Op // NR):
                b0 = (q * K + k0) * NR
                for t in range(nt):
                    gather_tile(xpad, bases, t * MR, offs, k0, kb, wp, b0, acc, t * MR * Op + q * NR, Op, add)
        pixels_to_planes(acc, Op, L, bias, outf[bi * O * L:(bi + 1) * O * L], np.int64(0), L, O,
                         np.bool_(False))     # run-time values, not literals: one compilation for both callers


def conv2d_tiled(x, w, b, out, sh, sw, ph, pw, split_above):
    """out[B, O, HO, WO] (float32, allocated by the caller) = torch.nn.functional.conv2d(x, w, b, (sh, sw),
    (ph, pw)) for one group; images split between threads when the multiply-adds reach ``split_above``."""
    B = x.shape[0]
    O, C, KH, KW = w.shape
    HO, WO = out.shape[2], out.shape[3]
    wp = pack_weights(np.asarray(w, np.float32))
    bias = np.zeros(wp.size // (C * KH * KW), np.float32)
    if b.shape[0]:
        bias[:O] = b
    args = (x, wp, bias, out, KH, KW, sh, sw, ph, pw)
    if B >= 2 and B * O * HO * WO * C * KH * KW >= split_above:
        split(_conv_images, B, *args)
    else:
        _conv_images(*args, 0, B)
    return out
