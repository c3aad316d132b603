"""Bytes held for the backward pass, per layer, and the peak over a training step.

Every array a training method keeps for its backward pass (stored activations, membranes, argmax maps,
recomputed activations, online traces) is registered here with the layer that holds it, and released when the
backward pass no longer needs it. ``live`` is the activation or gradient tensor in flight at that moment, so
``peak`` is the most memory the method needed at once beyond the parameters, gradients and optimiser state
(which every method needs alike).
"""

from __future__ import annotations

from collections import defaultdict


def _addr(a) -> int:
    return a.__array_interface__["data"][0]


class Ledger:
    """An array held by two layers (a residual input saved by both branches) is counted once, for the
    layer that registered it first."""

    def __init__(self):
        self.held: dict[str, int] = defaultdict(int)     # layer -> bytes held now
        self.layer_peak: dict[str, int] = defaultdict(int)
        self.total = 0
        self.peak = 0
        self._live = 0
        self._items: dict[tuple[str, str], list] = {}
        self._refs: dict[int, list] = {}                 # data address -> [refcount, bytes, layer]

    def hold(self, layer: str, key: str, *arrays) -> None:
        self.release(layer, key)
        addrs = []
        for a in arrays:
            if a is None or a.nbytes == 0:
                continue
            ad = _addr(a)
            ref = self._refs.get(ad)
            if ref is None:
                self._refs[ad] = [1, int(a.nbytes), layer]
                self.held[layer] += int(a.nbytes)
                self.total += int(a.nbytes)
            else:
                ref[0] += 1
            addrs.append(ad)
        self._items[(layer, key)] = addrs
        self.layer_peak[layer] = max(self.layer_peak[layer], self.held[layer])
        self._bump()

    def release(self, layer: str, key: str | None = None) -> None:
        keys = [k for k in self._items if k[0] == layer and (key is None or k[1] == key)]
        for k in keys:
            for ad in self._items.pop(k):
                ref = self._refs[ad]
                ref[0] -= 1
                if ref[0] == 0:
                    del self._refs[ad]
                    self.held[ref[2]] -= ref[1]
                    self.total -= ref[1]

    def live(self, *arrays) -> None:
        self._live = sum(int(a.nbytes) for a in arrays if a is not None)
        self._bump()

    def _bump(self) -> None:
        self.peak = max(self.peak, self.total + self._live)

    def report(self) -> dict:
        return {"peak_bytes": int(self.peak), "held_bytes": int(self.total),
                "per_layer_peak": {k: int(v) for k, v in self.layer_peak.items() if v}}


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
