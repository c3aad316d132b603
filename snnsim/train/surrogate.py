"""Surrogate gradients for the spike function, SpikingJelly 2.0's formulas and float32 expression order.

A surrogate replaces dS/dH (the derivative of the Heaviside step S = H >= threshold) in the backward pass.
``x = H - v_threshold``:

    sigmoid   alpha * s * (1 - s),  s = sigmoid(alpha * x)          (SJ ``Sigmoid``, default alpha 4)
    atan      alpha / 2 / (1 + (pi / 2 * alpha * x)^2)               (SJ ``ATan``, default alpha 2)
    triangle  max(0, alpha - alpha^2 * |x|)                          (SJ ``PiecewiseQuadratic``, default alpha 1)

``Quant`` (the ``threshold`` neuron, T-RevSNN's turned-off neuron) uses a straight-through estimator instead:
dS/dx = 1 where lo <= x <= hi (its clip window), 0 elsewhere; 1 everywhere without a clip.

Each surrogate is the exact derivative of a smooth primitive (``primitive``); the finite-difference tests run the
network with S = primitive(H - threshold) in the forward pass and check the backward kernels against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..errors import InputError

SURROGATES = {"sigmoid": 0, "atan": 1, "triangle": 2}
DEFAULT_ALPHA = {"sigmoid": 4.0, "atan": 2.0, "triangle": 1.0}
# SpikingJelly 2.0 class for each surrogate (reference tests build the same network with it)
SJ_CLASS = {"sigmoid": "Sigmoid", "atan": "ATan", "triangle": "PiecewiseQuadratic"}


@dataclass(frozen=True)
class Surrogate:
    name: str = "sigmoid"
    alpha: float = 4.0

    @property
    def sid(self) -> int:
        return SURROGATES[self.name]

    def __str__(self) -> str:
        return f"{self.name}:{self.alpha:g}"


def parse_surrogate(text: str, what: str = "--surrogate") -> Surrogate:
    """'sigmoid', 'atan:2', 'triangle:1.5' -> Surrogate; a one-line InputError otherwise."""
    name, _, a = str(text).partition(":")
    name = name.strip().lower()
    if name not in SURROGATES:
        raise InputError(f"{what}: unknown surrogate '{name}'; known: {', '.join(SURROGATES)} "
                         "(optionally NAME:ALPHA, e.g. atan:2)")
    if not a:
        return Surrogate(name, DEFAULT_ALPHA[name])
    try:
        alpha = float(a)
    except ValueError:
        alpha = float("nan")
    if not (math.isfinite(alpha) and alpha > 0):
        raise InputError(f"{what}: alpha must be a positive number, got '{a}'")
    return Surrogate(name, alpha)


@njit(cache=True, fastmath=False, inline="always")
def surrogate_grad(x, sid, alpha):
    """dS/dx for float32 x = H - threshold; alpha is a float64 scalar, cast the way PyTorch casts a Python
    float against a float32 tensor (SpikingJelly's expression order)."""
    one = np.float32(1.0)
    a = np.float32(alpha)
    if sid == 0:
        s = one / (one + np.exp(-(a * x)))
        return (one - s) * s * a
    if sid == 1:
        z = x * np.float32(math.pi / 2 * alpha)
        return np.float32(alpha / 2) / (one + z * z)
    g = a - np.float32(alpha * alpha) * abs(x)
    return g if g > 0 else np.float32(0.0)


# exp(z) in float32 without libm, so that a loop over a row vectorises (LLVM has no vector expf here): Cephes'
# expf (range reduction by ln 2 in two parts, a degree-6 polynomial, 2^n built in the exponent bits); within
# 2 ulp of libm's expf over the clamped range, z clamped to [-87.3, 88.3] (results there are 0 or inf to
# float32 either way, up to denormals).
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_P = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                       1.6666665459e-1, 5.0000001201e-1))


@njit(cache=True, fastmath=False, inline="always")
def sigmoid_grad_row(hr, threshold, alpha, sg, bits):
    """sg[j] = surrogate_grad(hr[j] - threshold, 0, alpha) (sigmoid) for a whole row, branch-free: the same
    formula with exp computed in vectorisable float32 arithmetic. ``bits`` is an int32 scratch row."""
    n = hr.shape[0]
    one = np.float32(1.0)
    half = np.float32(0.5)
    a = np.float32(alpha)
    lo = np.float32(-87.3)
    hi = np.float32(88.3)
    p0, p1, p2, p3, p4, p5 = _EXP_P
    scale = bits.view(np.float32)
    for j in range(n):
        z = -(a * (hr[j] - threshold))
        z = min(max(z, lo), hi)
        f = np.floor(z * _LOG2E + half)
        r = (z - f * _LN2_HI) - f * _LN2_LO
        r2 = r * r
        y = (((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5) * r2 + r + one
        bits[j] = (np.int32(f) + np.int32(127)) << np.int32(23)
        sg[j] = y
    for j in range(n):
        s = one / (one + sg[j] * scale[j])
        sg[j] = (one - s) * s * a


@njit(cache=True, fastmath=False, inline="always")
def surrogate_primitive(x, sid, alpha):
    """The smooth function whose derivative is the surrogate (finite-difference tests only)."""
    if sid == 0:
        return 1.0 / (1.0 + np.exp(-alpha * x))
    if sid == 1:
        return np.arctan(np.pi / 2 * alpha * x) / np.pi + 0.5
    if x <= -1.0 / alpha:
        return 0.0
    if x >= 1.0 / alpha:
        return 1.0
    return -0.5 * alpha * alpha * x * abs(x) + alpha * x + 0.5


def grad_np(x: np.ndarray, s: Surrogate) -> np.ndarray:
    """Vectorised surrogate derivative (float32), for the online methods and tests."""
    x = np.asarray(x, np.float32)
    a = np.float32(s.alpha)
    if s.sid == 0:
        sg = np.float32(1) / (np.float32(1) + np.exp(-(a * x)))
        return ((np.float32(1) - sg) * sg * a).astype(np.float32)
    if s.sid == 1:
        z = x * np.float32(math.pi / 2 * s.alpha)
        return (np.float32(s.alpha / 2) / (np.float32(1) + z * z)).astype(np.float32)
    return np.maximum(a - np.float32(s.alpha * s.alpha) * np.abs(x), np.float32(0)).astype(np.float32)
