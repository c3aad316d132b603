"""Copies between the kernels' layouts: an image into zero-padded planes, and a pixel-major scratch (channels
last) into NCHW output planes. Shared by the dense conv's paths (kernels/conv.py, kernels/conv_tiled.py), the
event conv (kernels/conv_event.py) and training's conv backward."""

from __future__ import annotations

from numba import njit

from .simd import transpose8_add, transpose8_add_clear


@njit(cache=True, fastmath=False, inline="always")
def pad_image(x, bi, c0, Cg, ph, pw, xpad, Wp, P):
    """xpad[c*P + (i+ph)*Wp + pw + j] = x[bi, c0+c, i, j] (x float32 or uint8). Only the interior is written:
    the border (and the slack after the last plane) keep the zeros the buffer was made with. Each row is copied
    through slices indexed from 0, so that the copy vectorises (indices from a start known only at run time
    keep Numba's negative-index check in the loop)."""
    H = x.shape[2]
    W = x.shape[3]
    for c in range(Cg):
        for i in range(H):
            d = c * P + (i + ph) * Wp + pw
            src = x[bi, c0 + c, i]
            dst = xpad[d:d + W]
            for j in range(W):
                dst[j] = src[j]


@njit(cache=True, fastmath=False, nogil=True)
def pixels_to_planes(acc, ld, n, bias, outf, d, HW, O, clear):
    """outf[o * HW + d + p] = acc[p * ld + o] + bias[o] for pixels p < n and channels o < O (acc pixel-major with
    rows of ``ld`` >= O floats; bias with at least O entries, zeros for a layer without one), and, with
    ``clear``, acc[p * ld + o] = 0 for its next use. Blocks of 8 pixels x 8 channels are register transposes
    (simd.transpose8_add[_clear]); leftover pixels or channels one by one. Channel blocks outside: eight output
    rows are written front to back, each of their cache lines filled at once."""
    n8 = n - n % 8
    O8 = O - O % 8
    for o0 in range(0, O8, 8):
        for p0 in range(0, n8, 8):
            if clear:
                transpose8_add_clear(acc, p0 * ld + o0, ld, outf, o0 * HW + d + p0, HW, bias, o0)
            else:
                transpose8_add(acc, p0 * ld + o0, ld, outf, o0 * HW + d + p0, HW, bias, o0)
    for o in range(O):
        for p in range(n8 if o < O8 else 0, n):
            outf[o * HW + d + p] = acc[p * ld + o] + bias[o]
            if clear:
                acc[p * ld + o] = 0.0
