"""Neuron maths: one pure Numba step per timestep, state in, state out.

The expression order follows SpikingJelly 2.0's CPU kernels exactly (docs/neurons.md, SpikingJelly 2.0 LIF), all
in float32 with ``fastmath=False``, so spikes and membranes can match bit for bit:

    lif   H = v + (x - (v - v_r)) / tau          (decay_input)   H = v - (v - v_r) / tau + x   (otherwise)
    plif  the same with ``/ tau`` replaced by ``* q``, q = sigmoid(w) computed in float32
    if    H = v + x
    li    H as lif; no spike, the output is H
    threshold (T-RevSNN Quant)  H = clip(x, lo, hi); no state
    S = H >= v_threshold  ('ge')  or  H > v_threshold  ('gt')
    hard reset v = v_reset where S else H;  subtract reset v = H - v_threshold where S else H
    delayed subtract reset (reset_delay, snnTorch's default Leaky): v = H, and the next step's H loses
        v_threshold when the previous H spiked:  H[t] = charge(H[t-1], x[t]) - v_threshold * S[t-1]

v_r is v_reset for hard reset and 0 for subtract reset; the initial state is v_r.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .kernels.pool import plane_2x2
from .kernels.stats import flat_stats

MODE = {"if": 0, "lif": 1, "plif": 2, "li": 3, "threshold": 4}


@dataclass(frozen=True)
class NeuronParams:
    """The float32 constants of one neuron layer, as the step kernel takes them."""

    mode: int
    factor: np.float32        # tau for lif/li (divided by), q = sigmoid(w) for plif (multiplied by)
    decay_input: bool
    v_r: np.float32           # reset value used in the leak (0 for subtract reset)
    threshold: np.float32
    hard: bool
    gt: bool
    clip: bool
    lo: np.float32
    hi: np.float32
    stateless: bool
    delay: bool = False       # delayed subtract reset: the state is H; the threshold comes off one step later

    @property
    def v_init(self) -> np.float32:
        return self.v_r


def neuron_params(layer, w: np.ndarray | None = None) -> NeuronParams:
    """The step kernel's constants for a neuron record (``snnsim.layers.neuron.Neuron``)."""
    if layer.neuron == "plif":
        # SpikingJelly computes q = w.float().sigmoid() in float32.
        w32 = np.float32(np.asarray(w, dtype=np.float32).reshape(()))   # checked weights may be shape (1,)
        factor = np.float32(1) / (np.float32(1) + np.exp(-w32, dtype=np.float32))
    else:
        factor = np.float32(layer.tau)
    lo, hi = layer.clip if layer.clip is not None else (0.0, 0.0)
    return NeuronParams(
        mode=MODE[layer.neuron], factor=np.float32(factor), decay_input=layer.decay_input,
        v_r=np.float32(layer.v_reset if layer.v_reset is not None else 0.0),
        threshold=np.float32(layer.v_threshold), hard=layer.v_reset is not None,
        gt=layer.spike_rule == "gt", clip=layer.clip is not None, lo=np.float32(lo), hi=np.float32(hi),
        stateless=not layer.stateful, delay=layer.reset_delay,
    )


@njit(cache=True, nogil=True)
def _charge(x, v, mode, factor, decay_input, v_r, clip, lo, hi, h_out, a, b):
    """H for elements [a, b). One loop per mode so that each loop is branch-free and vectorises."""
    if mode == 0:
        for i in range(a, b):
            h_out[i] = v[i] + x[i]
    elif mode == 4:
        if clip:
            for i in range(a, b):
                h_out[i] = min(max(x[i], lo), hi)
        else:
            for i in range(a, b):
                h_out[i] = x[i]
    elif mode == 2:
        if decay_input:
            for i in range(a, b):
                h_out[i] = v[i] + (x[i] - (v[i] - v_r)) * factor
        else:
            for i in range(a, b):
                h_out[i] = v[i] - (v[i] - v_r) * factor + x[i]
    else:
        if decay_input:
            for i in range(a, b):
                h_out[i] = v[i] + (x[i] - (v[i] - v_r)) / factor
        else:
            for i in range(a, b):
                h_out[i] = v[i] - (v[i] - v_r) / factor + x[i]


@njit(cache=True, nogil=True)
def _fire(h, mode, threshold, hard, delay, gt, v_r, out, v_out, a, b):
    """Spikes, reset and output for elements [a, b); returns the spike count. With ``delay`` the state keeps
    H: its reset is the subtraction ``_delayed_reset`` makes at the next step."""
    count = 0
    if mode == 3:                     # li: no spike, the output is H
        for i in range(a, b):
            out[i] = h[i]
            v_out[i] = h[i]
        return 0
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for i in range(a, b):
        hi = h[i]
        fire = hi > threshold if gt else hi >= threshold
        out[i] = one if fire else zero
        reset = v_r if hard else (hi if delay else hi - threshold)
        v_out[i] = reset if fire else hi
        count += 1 if fire else 0
    return count


@njit(cache=True, nogil=True)
def _delayed_reset(v, h, threshold, gt, a, b):
    """H[i] -= v_threshold where the previous H (the state v, which a delayed reset keeps) spiked. Subtracting
    after the charge is snnTorch's order: (beta*mem + x) - reset*threshold."""
    for i in range(a, b):
        fired = v[i] > threshold if gt else v[i] >= threshold
        if fired:
            h[i] = h[i] - threshold


@njit(cache=True, nogil=True)
def neuron_step(x, v, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi, out, v_out, h_out):
    """One timestep for a flat float32 array of neurons.

    x: input current; v: state before the step. Writes the output (spikes, or H for 'li') to ``out``,
    the new state to ``v_out`` (may alias ``v``) and the charged membrane H to ``h_out``.
    Returns the number of output spikes (0 for 'li').
    """
    _charge(x, v, mode, factor, decay_input, v_r, clip, lo, hi, h_out, 0, x.size)
    if delay:
        _delayed_reset(v, h_out, threshold, gt, 0, x.size)
    return _fire(h_out, mode, threshold, hard, delay, gt, v_r, out, v_out, 0, x.size)


_BLOCK = 4096


@njit(cache=True, nogil=True)
def _rest(mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi):
    """What one step does to a neuron at rest (state v_r) with input +0.0, by the step's own loops: (whether the
    state comes out as v_r, bit for bit, with no spike; the output then, 0 or for 'li' H). A block whose inputs
    are all +0.0 and states all v_r can then skip its arithmetic."""
    x = np.zeros(1, np.float32)
    v = np.full(1, v_r, np.float32)
    h, out, v2 = np.empty(1, np.float32), np.empty(1, np.float32), np.empty(1, np.float32)
    # the same argument types as the blocks' calls: a literal 0 start (indices provably >= 0, so the loops
    # vectorise; a run-time start made whole network runs 2x slower) and a run-time end (a literal 1 here was
    # a second compilation of each helper)
    _charge(x, v, mode, factor, decay_input, v_r, clip, lo, hi, h, 0, x.size)
    if delay:
        _delayed_reset(v, h, threshold, gt, 0, x.size)
    c = _fire(h, mode, threshold, hard, delay, gt, v_r, out, v2, 0, x.size)
    return c == 0 and v2.view(np.uint32)[0] == v.view(np.uint32)[0], out[0]


@njit(cache=True, nogil=True)
def _silent_at_rest(xbits, vbits, rest_bits):
    """Every input +0.0 and every state v_r (``rest_bits``), bit for bit (-0.0 is not +0.0: its charge may keep
    the sign)."""
    d = np.uint32(0)
    for i in range(xbits.shape[0]):     # branch-free: vectorises
        d |= xbits[i] | (vbits[i] ^ rest_bits)
    return d == 0


@njit(cache=True, nogil=True)
def _block_step(xb, vb, hb, ob, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi, stateless,
                counts, t, rest, rest_out):
    """One step of a block of neurons (input xb, state vb updated in place, H into the scratch hb, output into
    ob); adds counts[0, t] spikes, counts[1, t] nonzero inputs, counts[2, t] 1 if an input is neither 0 nor 1.
    Returns the spikes. ``rest`` (``_rest``: a neuron at rest stays so on a +0.0 input, its output ``rest_out``):
    a block with no input and every state at rest only writes its outputs."""
    n = xb.shape[0]
    if stateless:
        for i in range(n):
            vb[i] = v_r
    k, binary = flat_stats(xb)
    counts[1, t] += k
    counts[2, t] += 0 if binary else 1
    if rest and k == 0 and _silent_at_rest(xb.view(np.uint32), vb.view(np.uint32), np.float32(v_r).view(np.uint32)):
        for i in range(n):
            ob[i] = rest_out
        return 0
    _charge(xb, vb, mode, factor, decay_input, v_r, clip, lo, hi, hb, 0, n)
    if delay:
        _delayed_reset(vb, hb, threshold, gt, 0, n)
    c = _fire(hb, mode, threshold, hard, delay, gt, v_r, ob, vb, 0, n)
    counts[0, t] += c
    return c


@njit(cache=True, nogil=True)
def neuron_steps(x2, v, B, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi, stateless, out2,
                 counts, spikes_s, keep_v, v_all, keep_h, h_all):
    """Timesteps t = 0..T-1 of a neuron layer: x2 [T, N] (N = B samples side by side), state v [N] updated in
    place, spikes (or H for 'li') into out2 [T, N]. Adds what the engine records: counts[0, t] spikes,
    counts[1, t] nonzero inputs, counts[2, t] > 0 if an input is neither 0 nor 1, spikes_s[t, b] each sample's spikes (when
    spikes_s has B columns). The state after step t goes to v_all[t] when ``keep_v`` and the charge H to
    h_all[t] when ``keep_h`` (a probe or readout asks for them): inference never reads them otherwise.

    One pass over memory, blocks of neurons small enough for L1: a block's state stays in cache over all T
    steps, and each step runs the statistics, charge and fire loops (each branch-free, so each vectorises; one
    fused loop did not and ran 1.5x slower). ``stateless``: the state is cleared to v_r before every step.
    One thread: the loops run at well under a nanosecond per neuron, and a two-thread split of them
    measured several times slower (benchmarks in docs/performance.md)."""
    T, N = x2.shape
    n = N // B
    per_sample = spikes_s.shape[1] == B
    hb = np.empty(_BLOCK, np.float32)
    rest, rest_out = _rest(mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi)
    rest = rest and not keep_h           # a skipped block leaves no charge to keep
    for s in range(B):
        for a0 in range(0, n, _BLOCK):
            a = s * n + a0
            b = s * n + min(n, a0 + _BLOCK)
            vb = v[a:b]
            for t in range(T):
                c = _block_step(x2[t, a:b], vb, hb, out2[t, a:b], mode, factor, decay_input, v_r, threshold, hard,
                                delay, gt, clip, lo, hi, stateless, counts, t, rest, rest_out)
                if per_sample:
                    spikes_s[t, s] += c
                if keep_v:          # loops: a slice copy compiles Numba's shape-error path
                    for i in range(b - a):
                        v_all[t, a + i] = vb[i]
                if keep_h:
                    for i in range(b - a):
                        h_all[t, a + i] = hb[i]


@njit(cache=True, nogil=True)
def neuron_steps_pool(x2, v, B, C, H, W, kind, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo,
                      hi, stateless, pooled2, counts, spikes_s):
    """``neuron_steps`` of a spiking layer of B samples [C, H, W] fused with the 2x2, stride-2 pooling that
    follows it (``kind`` 0 average, 1 maximum; kernels/pool.py's order of operations): blocks of whole row pairs
    of a plane are stepped, their spikes pooled while in cache into pooled2 [T, B * C * (H // 2) * (W // 2)],
    and the spikes themselves never written out (nothing reads them). Adds counts[3, t]: nonzero pooled outputs.
    """
    T = x2.shape[0]
    HO, WO = H // 2, W // 2
    rows = max(2, (_BLOCK // max(1, W)) // 2 * 2)          # an even number of rows: whole pooling windows
    # Small planes of an even height are stepped several at a time: stacked, they are one taller plane whose
    # row pairs never straddle two planes, so each block pools exactly as plane by plane, at a fraction of the
    # per-block cost (a 28 x 28 plane alone is a fifth of a block).
    planes = _BLOCK // (H * W) if H % 2 == 0 and H * W <= _BLOCK else 1
    hb = np.empty(max(rows * W, planes * H * W), np.float32)
    sb = np.empty(max(rows * W, planes * H * W), np.float32)
    rest, rest_out = _rest(mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi)
    for s in range(B):
        if planes > 1:
            for c0 in range(0, C, planes):
                k = min(C, c0 + planes) - c0
                a, b = (s * C + c0) * H * W, (s * C + c0 + k) * H * W
                p0 = (s * C + c0) * HO * WO
                vb = v[a:b]
                for t in range(T):
                    spikes_s[t, s] += _block_step(x2[t, a:b], vb, hb, sb[:b - a], mode, factor, decay_input, v_r,
                                                  threshold, hard, delay, gt, clip, lo, hi, stateless, counts, t,
                                                  rest, rest_out)
                    counts[3, t] += _pool_block(sb[:b - a].reshape(k * H, W), pooled2[t, p0:p0 + k * HO * WO], k * HO,
                                                WO, kind)
            continue
        for c in range(C):
            base = (s * C + c) * H * W
            pbase = (s * C + c) * HO * WO
            for r0 in range(0, H, rows):
                r1 = min(H, r0 + rows)
                a, b = base + r0 * W, base + r1 * W
                vb = v[a:b]
                prows = min((r1 - r0) // 2, HO - r0 // 2)   # pooled rows of this block (an odd last row: none)
                for t in range(T):
                    spikes_s[t, s] += _block_step(x2[t, a:b], vb, hb, sb[:b - a], mode, factor, decay_input, v_r,
                                                  threshold, hard, delay, gt, clip, lo, hi, stateless, counts, t,
                                                  rest, rest_out)
                    if prows > 0:
                        p0 = pbase + (r0 // 2) * WO
                        counts[3, t] += _pool_block(sb[:2 * prows * W].reshape(2 * prows, W),
                                                    pooled2[t, p0:p0 + prows * WO], prows, WO, kind)


@njit(cache=True, nogil=True)
def _pool_block(spikes, po, prows, WO, kind):
    """2x2 stride-2 pooling of a block of spikes [2 * prows (+ 1), W] into po (flat, prows x WO); returns the
    nonzero pooled outputs."""
    plane_2x2(spikes, po.reshape(prows, WO), kind)
    nz = 0
    for i in range(prows * WO):
        nz += po[i] != 0
    return nz


_NONE = np.zeros((0, 0), np.float32)
_NO_SAMPLES = np.zeros((0, 0), np.int64)


def steps(p: NeuronParams, x: np.ndarray, v: np.ndarray, out: np.ndarray, spikes_s: np.ndarray | None = None,
          v_all: np.ndarray | None = None, h_all: np.ndarray | None = None) -> np.ndarray:
    """Advance a neuron layer over the timesteps of x [T, B, ...] (state v [B, ...] updated in place; spikes,
    or H for 'li', into out [T, B, ...]). Returns counts [3, T]: per step, spikes, nonzero inputs and (> 0 if any)
    non-binary inputs. Adds each sample's spikes per step into ``spikes_s`` [T, B] and keeps the state and charge
    after every step in ``v_all`` and ``h_all`` [T, B, ...] when they are given."""
    T, B = x.shape[0], x.shape[1]
    counts = np.zeros((3, T), np.int64)
    keep_v, keep_h = v_all is not None, h_all is not None
    neuron_steps(x.reshape(T, -1), v.reshape(-1), B, p.mode, p.factor, p.decay_input, p.v_r, p.threshold, p.hard,
                 p.delay, p.gt, p.clip, p.lo, p.hi, p.stateless, out.reshape(T, -1), counts,
                 _NO_SAMPLES if spikes_s is None else spikes_s, keep_v, v_all.reshape(T, -1) if keep_v else _NONE,
                 keep_h, h_all.reshape(T, -1) if keep_h else _NONE)
    return counts


def steps_pool(p: NeuronParams, x: np.ndarray, v: np.ndarray, kind: int, pooled: np.ndarray,
               spikes_s: np.ndarray) -> np.ndarray:
    """``steps`` of a spiking layer, x [T, B, C, H, W], with the 2x2 stride-2 pooling after it (kind 0 average,
    1 maximum) into pooled [T, B, C, H // 2, W // 2]; the spikes are not kept. Returns counts [4, T]: those of
    ``steps`` and the nonzero pooled outputs per step."""
    T, B, C, H, W = x.shape
    counts = np.zeros((4, T), np.int64)
    neuron_steps_pool(x.reshape(T, -1), v.reshape(-1), B, C, H, W, kind, p.mode, p.factor, p.decay_input, p.v_r,
                      p.threshold, p.hard, p.delay, p.gt, p.clip, p.lo, p.hi, p.stateless, pooled.reshape(T, -1),
                      counts, spikes_s)
    return counts


def step(p: NeuronParams, x: np.ndarray, v: np.ndarray, out: np.ndarray, h: np.ndarray) -> int:
    """Advance one neuron layer by a timestep; ``v`` is updated in place. Returns the spike count."""
    if p.stateless:
        v.fill(p.v_init)
    return neuron_step(x.reshape(-1), v.reshape(-1), p.mode, p.factor, p.decay_input, p.v_r, p.threshold,
                       p.hard, p.delay, p.gt, p.clip, p.lo, p.hi, out.reshape(-1), v.reshape(-1), h.reshape(-1))
