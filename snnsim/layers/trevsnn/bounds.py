"""The error bounds of a T-RevSNN column's inverse (docs/papers.md, T-RevSNN inverse):

    c_l[t-1] = (c_l[t] - L_l(c_{l-1}[t], c_{l+1}[t-1])) / alpha_l,    l = L-1 .. 0, each step re-running L forward

the bound on a rebuilt state, the Quant spikes it may flip, and the forward-side guard that keeps the states
whose reconstruction would be at risk. ``snnsim.regimes.trev`` runs the inverse with them."""

from __future__ import annotations

import numpy as np

from ..op import FLOOR, SAFETY, U

QUANT_THRESHOLD = 0.5


def recon_bound(c: np.ndarray, ec, eo, alpha: np.ndarray, chat: np.ndarray) -> np.ndarray:
    """Bound on |c_hat - c_prev| for c_hat = fl(fl(c - o) / alpha), where the forward computed
    c = fl(o_true + fl(alpha * c_prev)), |c - c_true| <= ec and |o - o_true| <= eo (/ |alpha|: docs/papers.md)."""
    ec = 0.0 if ec is None else ec
    eo = 0.0 if eo is None else eo
    a = np.abs(alpha)
    with np.errstate(divide="ignore"):        # alpha = 0: no inverse, an infinite bound (the guard keeps c)
        e = (ec + eo + U * (np.abs(c) + ec)) * (1 + 2 * U) / a + 4 * U * np.abs(chat)
    return (np.asarray(e, np.float32) * np.float32(SAFETY) + np.float32(FLOOR)).astype(np.float32)


def quant_risk(c: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Elements whose Quant spike (c > 0.5) may differ from the forward's, given |c - c_forward| <= e."""
    eh = e * np.float32(1.02) + np.float32(9 * U) * (np.abs(c) + 1) + np.float32(2 * FLOOR)
    return np.abs(c - np.float32(QUANT_THRESHOLD)) <= eh


def guard_mask(c_t: np.ndarray, c_prev: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Forward-side test (exact values known): elements of c_prev whose reconstruction from column t could
    be flagged by ``invert_column`` (margin 3x the reconstruction bound, so the inverse's own test, done on
    the reconstructed value, never flags an element this one let through)."""
    b = recon_bound(c_t, None, None, alpha, c_prev)
    return quant_risk(c_prev, 3 * b)


