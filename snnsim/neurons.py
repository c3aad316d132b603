"""Neuron maths: one pure Numba step per timestep, state in, state out.

The expression order follows SpikingJelly 2.0's CPU kernels exactly (shared/research/peers.md §3.1), all
in float32 with ``fastmath=False``, so spikes and membranes can match bit for bit:

    lif   H = v + (x - (v - v_r)) / tau          (decay_input)   H = v - (v - v_r) / tau + x   (otherwise)
    plif  the same with ``/ tau`` replaced by ``* q``, q = sigmoid(w) computed in float32
    if    H = v + x
    li    H as lif; no spike, the output is H
    threshold (T-RevSNN Quant)  H = clip(x, lo, hi); no state
    S = H >= v_threshold  ('ge')  or  H > v_threshold  ('gt')
    hard reset v = v_reset where S else H;  subtract reset v = H - v_threshold where S else H

v_r is v_reset for hard reset and 0 for subtract reset; the initial state is v_r.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .spec import Neuron

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

    @property
    def v_init(self) -> np.float32:
        return self.v_r


def neuron_params(layer: Neuron, w: np.ndarray | None = None) -> NeuronParams:
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
        stateless=not layer.stateful,
    )


@njit(cache=True)
def neuron_step(x, v, mode, factor, decay_input, v_r, threshold, hard, gt, clip, lo, hi, out, v_out, h_out):
    """One timestep for a flat float32 array of neurons.

    x: input current; v: state before the step. Writes the output (spikes, or H for 'li') to ``out``,
    the new state to ``v_out`` (may alias ``v``) and the charged membrane H to ``h_out``.
    Returns the number of output spikes (0 for 'li').
    """
    n = x.size
    one = np.float32(1.0)
    zero = np.float32(0.0)
    count = 0
    for i in range(n):
        vi = v[i]
        xi = x[i]
        if mode == 0:
            h = vi + xi
        elif mode == 4:
            h = xi
            if clip:
                h = min(max(h, lo), hi)
        elif mode == 2:
            if decay_input:
                h = vi + (xi - (vi - v_r)) * factor
            else:
                h = vi - (vi - v_r) * factor + xi
        else:
            if decay_input:
                h = vi + (xi - (vi - v_r)) / factor
            else:
                h = vi - (vi - v_r) / factor + xi
        h_out[i] = h
        if mode == 3:
            out[i] = h
            v_out[i] = h
            continue
        fire = h > threshold if gt else h >= threshold
        if fire:
            out[i] = one
            count += 1
            v_out[i] = v_r if hard else h - threshold
        else:
            out[i] = zero
            v_out[i] = h
    return count


def step(p: NeuronParams, x: np.ndarray, v: np.ndarray, out: np.ndarray, h: np.ndarray) -> int:
    """Advance one neuron layer by a timestep; ``v`` is updated in place. Returns the spike count."""
    if p.stateless:
        v.fill(p.v_init)
    return neuron_step(x.reshape(-1), v.reshape(-1), p.mode, p.factor, p.decay_input, p.v_r, p.threshold,
                       p.hard, p.gt, p.clip, p.lo, p.hi, out.reshape(-1), v.reshape(-1), h.reshape(-1))
