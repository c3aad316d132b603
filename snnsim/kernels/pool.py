"""Pooling and upsampling on x[B, C, H, W] (PyTorch semantics, ceil_mode=False).

Each (batch, channel) plane is independent; one compiled function pools a range of
planes, called once for small tensors and split between threads (kernels/threads.py)
for large ones, because a parallel region costs more than a small pooling layer itself.
The common 2x2 window has its own compiled function, chosen in Python, so that a network
with only 2x2 pools never compiles the generic loops (cold start).
"""
import numpy as np
from numba import njit

from .threads import split

# Work (output elements x window size) above which the planes are split between
# threads: several milliseconds of serial work, the rule for every kernel (conv.py).
_PAR_MIN_WORK = 1 << 23


@njit(cache=True, fastmath=False, nogil=True)
def _avg_plane(xp, op, kh, kw, sh, sw, ph, pw):
    H, W = xp.shape
    HO, WO = op.shape
    # count_include_pad=True and ceil_mode=False: the window never leaves the
    # padded input, so the divisor is always kh*kw.
    inv = np.float32(1.0) / np.float32(kh * kw)
    for oi in range(HO):
        i0 = oi * sh - ph
        for oj in range(WO):
            j0 = oj * sw - pw
            s = np.float32(0.0)
            for a in range(max(0, i0), min(H, i0 + kh)):
                for c in range(max(0, j0), min(W, j0 + kw)):
                    s += xp[a, c]
            op[oi, oj] = s * inv


@njit(cache=True, fastmath=False, nogil=True)
def _max_plane(xp, op, kh, kw, sh, sw, ph, pw):
    H, W = xp.shape
    HO, WO = op.shape
    for oi in range(HO):
        i0 = oi * sh - ph
        for oj in range(WO):
            j0 = oj * sw - pw
            m = -np.inf  # padding acts as -inf: only real inputs can win
            for a in range(max(0, i0), min(H, i0 + kh)):
                for c in range(max(0, j0), min(W, j0 + kw)):
                    v = xp[a, c]
                    if v > m:
                        m = v
            op[oi, oj] = m


@njit(cache=True, fastmath=False, inline="always")
def plane_2x2(xp, op, kind):
    """2x2 windows, stride 2, no padding (the common case): the window's four values read straight from two
    rows, in the generic loops' order (row by row), so that sums and maxima are the same bits; the generic
    loops spend most of their time on window bounds."""
    HO, WO = op.shape
    inv = np.float32(0.25)
    for oi in range(HO):
        r0 = xp[2 * oi]
        r1 = xp[2 * oi + 1]
        o = op[oi]
        if kind == 0:
            for oj in range(WO):
                j = 2 * oj
                o[oj] = (((np.float32(0.0) + r0[j]) + r0[j + 1]) + r1[j] + r1[j + 1]) * inv
        else:
            for oj in range(WO):
                j = 2 * oj
                m = -np.inf
                for v in (r0[j], r0[j + 1], r1[j], r1[j + 1]):
                    if v > m:
                        m = v
                o[oj] = m


@njit(cache=True, fastmath=False, nogil=True)
def _pool_planes(x, out, kind, kh, kw, sh, sw, ph, pw, p0, p1):
    """Planes [p0, p1) (plane p = image p // C, channel p % C), any window."""
    C = x.shape[1]
    for p in range(p0, p1):
        b = p // C
        c = p - b * C
        if kind == 0:
            _avg_plane(x[b, c], out[b, c], kh, kw, sh, sw, ph, pw)
        else:
            _max_plane(x[b, c], out[b, c], kh, kw, sh, sw, ph, pw)


@njit(cache=True, fastmath=False, nogil=True)
def _pool_planes_2x2(x, out, kind, p0, p1):
    """Planes [p0, p1) with 2x2 windows, stride 2, no padding."""
    C = x.shape[1]
    for p in range(p0, p1):
        b = p // C
        c = p - b * C
        plane_2x2(x[b, c], out[b, c], kind)


def _pool(x, kind, kh, kw, sh, sw, ph, pw):
    B, C, H, W = x.shape
    HO = (H + 2 * ph - kh) // sh + 1
    WO = (W + 2 * pw - kw) // sw + 1
    out = np.empty((B, C, HO, WO), np.float32)
    if (kh, kw, sh, sw, ph, pw) == (2, 2, 2, 2, 0, 0):
        fn, args = _pool_planes_2x2, (x, out, kind)
    else:
        fn, args = _pool_planes, (x, out, kind, kh, kw, sh, sw, ph, pw)
    if B * C * HO * WO * kh * kw >= _PAR_MIN_WORK:
        split(fn, B * C, *args)
    else:
        fn(*args, 0, B * C)
    return out


def avgpool2d(x, kh, kw, sh, sw, ph, pw):
    """torch.nn.functional.avg_pool2d with count_include_pad=True, ceil_mode=False."""
    return _pool(x, 0, kh, kw, sh, sw, ph, pw)


def maxpool2d(x, kh, kw, sh, sw, ph, pw):
    """torch.nn.functional.max_pool2d (padding is -inf), ceil_mode=False."""
    return _pool(x, 1, kh, kw, sh, sw, ph, pw)


@njit(cache=True, fastmath=False, nogil=True)
def upsample_nearest2d(x, scale):
    """Nearest-neighbour upsampling by an integer factor: out[..., i, j] = x[..., i // s, j // s]."""
    B, C, H, W = x.shape
    out = np.empty((B, C, H * scale, W * scale), np.float32)
    for b in range(B):
        for c in range(C):
            xp = x[b, c]
            op = out[b, c]
            for i in range(H):
                # build the first replicated row, then copy it scale-1 times (contiguous memcpy)
                r0 = op[i * scale]
                for j in range(W):
                    v = xp[i, j]
                    for t in range(scale):
                        r0[j * scale + t] = v
                for t in range(1, scale):       # a loop: a slice copy compiles Numba's shape-error path
                    rt = op[i * scale + t]
                    for j in range(W * scale):
                        rt[j] = r0[j]
    return out
