"""Losses on the per-timestep outputs ``out [T, B, C]``; each returns (loss, d loss / d out).

    ce        cross-entropy on the readout: the mean output over T (``readout.reduce: mean``) or the last
              timestep's (``reduce: last``); optional label smoothing (timm's LabelSmoothingCrossEntropy)
    mse       mean squared error between the readout and the one-hot label (SpikingJelly's examples)
    tet       TET (Deng et al. 2022): (1 - lambda) * mean_t CE(out[t], y) + lambda * MSE(out, means)
    compound  T-RevSNN's sum_k (k / K) * CE(out[k], y) + CE(out[K], y), K = T heads (docs/papers.md)

Cross-entropies are computed in float64 from float32 outputs; gradients are returned in float32.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..errors import InputError

LOSSES = ("ce", "mse", "tet", "compound")


def _ce(logits: np.ndarray, y: np.ndarray, smoothing: float = 0.0):
    """Mean cross-entropy over the batch and its gradient w.r.t. the logits [B, C]."""
    z = logits.astype(np.float64).reshape(len(logits), -1)
    B, C = z.shape
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    target = np.zeros_like(z)
    target[np.arange(B), y] = 1.0
    if smoothing:
        target = (1.0 - smoothing) * target + smoothing / C
    loss = float(-(target * logp).sum() / B)
    grad = (np.exp(logp) - target) / B
    return loss, grad.reshape(logits.shape)


def readout(out: np.ndarray, reduce: str) -> np.ndarray:
    return out.mean(axis=0) if reduce == "mean" else out[-1]


def _through_readout(g, shape, reduce: str) -> np.ndarray:
    """The gradient on the outputs [T, ...] of a loss whose gradient on readout(out, reduce) is g."""
    grad = np.zeros(shape, np.float32)
    if reduce == "mean":
        grad[:] = (g / shape[0]).astype(np.float32)
    else:
        grad[-1] = g.astype(np.float32)
    return grad


def ce_loss(out, y, reduce="mean", smoothing=0.0):
    loss, g = _ce(readout(out, reduce), y, smoothing)
    return loss, _through_readout(g, out.shape, reduce)


def mse_loss(out, y, reduce="mean"):
    r = readout(out, reduce).astype(np.float64).reshape(out.shape[1], -1)
    target = np.zeros_like(r)
    target[np.arange(len(y)), y] = 1.0
    d = r - target
    loss = float((d * d).mean())
    g = (2.0 * d / d.size).reshape(out.shape[1:])
    return loss, _through_readout(g, out.shape, reduce)


def tet_loss(out, y, lamb=0.0, means=1.0, smoothing=0.0):
    T = out.shape[0]
    loss = 0.0
    grad = np.zeros(out.shape, np.float32)
    for t in range(T):
        lt, gt = _ce(out[t], y, smoothing)
        loss += (1.0 - lamb) * lt / T
        grad[t] = ((1.0 - lamb) * gt / T).astype(np.float32)
    if lamb:
        d = out.astype(np.float64) - means
        loss += lamb * float((d * d).mean())
        grad += (lamb * 2.0 * d / d.size).astype(np.float32)
    return loss, grad


def compound_loss(out, y, smoothing=0.0):
    K = out.shape[0]
    loss = 0.0
    grad = np.zeros(out.shape, np.float32)
    for k in range(K):
        w = (k + 1) / K + (1.0 if k == K - 1 else 0.0)
        lk, gk = _ce(out[k], y, smoothing)
        loss += w * lk
        grad[k] = (w * gk).astype(np.float32)
    return loss, grad


def make_loss(name: str, reduce: str = "mean", smoothing: float = 0.0, tet_lambda: float = 0.0):
    if name == "ce":
        return partial(ce_loss, reduce=reduce, smoothing=smoothing)
    if name == "mse":
        return partial(mse_loss, reduce=reduce)
    if name == "tet":
        return partial(tet_loss, lamb=tet_lambda, smoothing=smoothing)
    if name == "compound":
        return partial(compound_loss, smoothing=smoothing)
    raise InputError(f"--loss: unknown loss '{name}'; known: {', '.join(LOSSES)}")


def per_step_loss(name: str, smoothing: float = 0.0):
    """The loss the online methods apply at each timestep t of T: (loss_t, grad of out[t]); the sum over t of
    the losses equals ``make_loss`` for ce-mean (on the mean over T, which they approximate) and TET."""
    def fn(out_t, y, t, T):
        lt, gt = _ce(out_t, y, smoothing)
        return lt / T, (gt / T).astype(np.float32)
    return fn
