"""Counts from a trace: what a run did, per layer and timestep, per inference, before any pricing.

Reads only ``snnsim.trace`` records (geometry as plain numbers), priced by their plain fields (synaptic,
neuron_model, elementwise), never by their kind. Everything that does not depend on the
architecture is counted here; what does (membrane dataflow, buffer spills, DRAM traffic) is derived from
these columns in ``hwmodel.energy``. The equations are in docs/hwmodel.md; the short version:

  synops      sum over input positions of events x exact fan-out   (binary inputs only)
  macs_dense  the layer's dense MACs (FLOPs convention of SpikingJelly/BICLab) when the input is not binary
  macs_nz     nonzero inputs x exact fan-out (zero-skipping MAC engine), non-binary inputs
  dense_*     reads of a weight-stationary dense evaluation: every weight once, every input once
  bias        one read per bias word and one add per output neuron, per step the layer ran
  neuron ops  leak (stateful LIF-like), compare (spiking), reset (per output spike)
  u_rw        membrane reads (= writes) of state carried across timesteps: 0 for stateless neurons
  packets     input entries delivered to a layer with weights (one address event each)
  addr        Lemaire 2022 Eq. 16/17 address generation
  T-RevSNN    (elementwise 'carry', 'channel_multiply', 'copy'; docs/hwmodel.md "T-RevSNN")
    state_reads/_writes  c_l[t-1] read at t > 0, c_l[t] written when it is carried to t+1 (membrane width)
    state_mul_adds       c = o + alpha * c_prev: one multiply and one add per element, at t > 0 only
    mul_ops              layer scale: one multiply per element
    copy_words           upsample: each input element read once, each output element written once
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from snnsim.trace import LayerTrace, Trace

LEAKY = ("lif", "plif", "li")
ENCODER_MODES = ("as_run", "every_step")
BINARY_MODES = ("per_sample", "per_run")

# per-row count columns (per inference)
COLUMNS = ("computed", "events_in", "binary", "synops", "macs_dense", "macs_nz", "dense_w_reads",
           "dense_in_reads", "neuron_updates", "spikes_out", "leak_ops", "compares", "resets", "u_rw",
           "stateless_nu", "bias_reads", "bias_adds", "other_ops", "addr_mul", "addr_add", "packets",
           "entries_binary", "entries_analog", "state_carried_words", "state_reads", "state_writes",
           "state_mul_adds", "mul_ops", "copy_words")


@dataclass
class Counts:
    network: str
    regime: str
    timesteps: int
    samples: int
    encoder: str
    layers: pd.DataFrame      # one row per layer: geometry sizes, unit (core group), flags
    rows: pd.DataFrame        # one row per layer and timestep (layer-major): the COLUMNS above, per inference
    # the COLUMNS whose value differs between samples, per sample: [S, rows]; empty when the trace has no
    # per-sample counts (one mean sample) or every sample did the same. hwmodel prices every sample by
    # itself (latency, leakage and mapping included) and reports the mean.
    per_sample: dict = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return int(self.layers.unit.max()) + 1

    def totals(self) -> pd.Series:
        return self.rows[list(COLUMNS)].sum()

    def state_held_words(self) -> float:
        """State words held at once across a timestep boundary: the largest, over t < T-1, sum of the state
        carried from t to t+1. Multi-step: every stateful layer at every t (the sum of their sizes); trev:
        one column's c_l (column t+1 frees c_l[t] as it overwrites it)."""
        per_t = self.rows.groupby("t").state_carried_words.sum()
        return float(per_t.max()) if len(per_t) else 0.0


# ----------------------------------------------------------------------------- geometry
def axis_reach(n: int, k: int, s: int, p: int, out: int) -> np.ndarray:
    """How many outputs each input position i feeds along one axis: #j with 0 <= i + p - j*s < k."""
    i = np.arange(n)[:, None]
    j = np.arange(out)[None, :]
    kk = i + p - j * s
    return ((kk >= 0) & (kk < k)).sum(axis=1)


def fanout(rec: LayerTrace) -> np.ndarray | None:
    """Outputs reached from each input position, from the geometry alone (exact at borders, stride, groups)."""
    g = rec.geometry
    if rec.synaptic and not _is_kernel(rec):
        return np.full(rec.in_shape, float(g["out_features"]))
    if _is_kernel(rec):
        c, h, w = rec.in_shape
        _, ho, wo = rec.out_shape
        (kh, kw), (sh, sw), (ph, pw) = _pair(g["kernel_size"]), _pair(g["stride"]), _pair(g["padding"])
        per_pos = np.outer(axis_reach(h, kh, sh, ph, ho), axis_reach(w, kw, sw, pw, wo))
        per_pos = per_pos * (g["out_channels"] // g.get("groups", 1))
        return np.broadcast_to(per_pos, (c, h, w)).astype(np.float64)
    return rec.fanout_map.astype(np.float64) if rec.fanout_map is not None else None


def dense_macs(rec: LayerTrace) -> float:
    """MACs of one dense evaluation of the layer for one sample (padding taps included, as FLOPs are)."""
    g = rec.geometry
    if rec.synaptic and not _is_kernel(rec):
        return float(g["in_features"] * g["out_features"])
    if _is_kernel(rec):
        kh, kw = _pair(g["kernel_size"])
        return float(np.prod(rec.out_shape) * (g["in_channels"] // g.get("groups", 1)) * kh * kw)
    if rec.elementwise == "multiply_add":     # batch norm not folded: one per element (SpikingJelly's count)
        return float(np.prod(rec.in_shape))
    return 0.0


def _is_kernel(rec: LayerTrace) -> bool:
    """A synaptic layer whose weights are a kernel slid over the input (its geometry has a kernel size)."""
    return rec.synaptic and "kernel_size" in rec.geometry


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _dense_addr(rec: LayerTrace) -> float:
    """Address adds of a dense evaluation (Lemaire 2022, FNN rows): conv Cin*Hin*Win + Cout*Hout*Wout +
    Cout*Kh*Kw, linear Nin*Nout."""
    g = rec.geometry
    if _is_kernel(rec):
        kh, kw = _pair(g["kernel_size"])
        return float(np.prod(rec.in_shape) + np.prod(rec.out_shape) + g["out_channels"] * kh * kw)
    return float(g["in_features"] * g["out_features"])


# ----------------------------------------------------------------------------- the encoder switch
def _steps_as_counted(rec: LayerTrace, encoder: str, n: int, per_sample: bool):
    """Per-step arrays of a layer; with encoder='every_step' a layer that ran at some steps only (a
    direct-encoded input layer runs once and its output is replayed) is charged at every step with the
    counts of its last run, as the papers' proxy does.

    The event counts are per sample, [T, S]: nonzero inputs, outputs, inputs x fan-out ('reach') and whether
    the sample's input was not binary ('analog'), so that each sample is priced by its own input (a price
    independent of the other samples of the run). Traces without per-sample arrays give one column, the mean
    sample. With ``per_sample`` False the run-wide flag decides for every sample, the convention of
    SpikingJelly's op counter and NeuroBench (one decision per layer call on a whole batch)."""
    T = len(rec.computed)
    computed = rec.computed.astype(bool).copy()
    idx = np.arange(T)
    if encoder == "every_step" and computed.any() and not computed.all():
        ran = np.where(computed)[0]
        idx = ran[np.clip(np.searchsorted(ran, idx, side="right") - 1, 0, None)]
        computed[:] = True
    binary = rec.binary_in[idx].astype(bool)
    nu = rec.neuron_updates[idx].astype(np.float64) / n      # every sample updates every neuron
    fo = fanout(rec) if rec.synaptic else None
    if _per_sample_consistent(rec, n):
        def per(arr, run_sum=None):     # a count not recorded per sample: every sample gets the mean
            if arr is not None:
                return arr[idx].astype(np.float64)
            mean = run_sum[idx] / n if run_sum is not None else np.zeros(T)
            return np.repeat(np.asarray(mean, np.float64)[:, None], n, 1)
        ev_in, ev_out = per(rec.sample_events_in, rec.events_in), per(rec.sample_events_out, rec.events_out)
        reach = per(rec.sample_reach)
        analog = per(rec.sample_analog) if per_sample else np.repeat((~binary)[:, None], n, 1).astype(np.float64)
        return computed, nu, ev_in, ev_out, reach, reach * analog, ev_in * analog, analog
    # the mean sample: run sums / samples, the analog part from the run's analog event map
    em = rec.event_map[idx].astype(np.float64) if rec.event_map is not None else None
    if per_sample and rec.analog_samples is not None:
        analog = rec.analog_samples[idx].astype(np.float64) / n
        em_a = rec.event_map_analog[idx].astype(np.float64) if rec.event_map_analog is not None else None
    else:
        analog = (~binary).astype(np.float64)
        em_a = em * (~binary).reshape((-1,) + (1,) * (em.ndim - 1)) if em is not None else None

    def reach_of(m):
        return (m.reshape(T, -1) @ fo.reshape(-1)) / n if m is not None and fo is not None else np.zeros(T)

    e_an = em_a.reshape(T, -1).sum(axis=1) / n if em_a is not None else np.zeros(T)
    col = lambda a: np.asarray(a, np.float64).reshape(T, 1)   # noqa: E731
    return (computed, nu, col(rec.events_in[idx] / n), col(rec.events_out[idx] / n), col(reach_of(em)),
            col(reach_of(em_a)), col(e_an), col(analog))


def _per_sample_consistent(rec: LayerTrace, n: int) -> bool:
    """The record has per-sample counts for the run's n samples and they add up to its run totals (a trace
    edited by hand in its totals only is priced as one mean sample)."""
    arrays = (rec.sample_events_in, rec.sample_events_out, rec.sample_reach, rec.sample_analog)
    if all(a is None for a in arrays) or any(a is not None and a.shape != (len(rec.events_in), n) for a in arrays):
        return False
    ok = rec.sample_events_in is None or np.array_equal(rec.sample_events_in.sum(axis=1), rec.events_in)
    ok &= rec.sample_events_out is None or np.array_equal(rec.sample_events_out.sum(axis=1), rec.events_out)
    if rec.sample_reach is not None and rec.event_map is not None and rec.fanout_map is not None:
        ok &= np.allclose(rec.sample_reach.sum(axis=1), rec.synops, rtol=1e-12, atol=0)
    if rec.sample_analog is not None:
        ok &= np.array_equal(rec.sample_analog.sum(axis=1),
                             rec.analog_samples if rec.analog_samples is not None else np.zeros(len(rec.events_in)))
    return bool(ok)


# ----------------------------------------------------------------------------- counting
def slots(trace: Trace) -> tuple[list[int], list[int]]:
    """For each record, the record whose buffer space holds its weights, and its carried state (itself
    unless shared); used by the sequential mapping, where all layers share the same buffers.

    Weights: a conv with ``shared_from`` (T-RevSNN's reused convs) uses the stored weights of that layer.
    State: c_l[t] overwrites c_l[t-1] in place (elementwise; its other reader, the up path of level l-1,
    has already run), so every column's state of level l uses the slot of the first one."""
    index = {rec.name: i for i, rec in enumerate(trace.layers)}
    first, w_slot, s_slot = {}, [], []
    for i, rec in enumerate(trace.layers):
        w_slot.append(index.get(rec.geometry.get("shared_from") or "", i))
        level = rec.geometry.get("level") if rec.elementwise == "carry" and rec.stateful else None
        s_slot.append(first.setdefault(level, i) if level is not None else i)
    return w_slot, s_slot


def count(trace: Trace, encoder: str = "as_run", binary: str = "per_sample") -> Counts:
    """Per-layer, per-timestep counts per inference (the trace's sums divided by ``trace.samples``).

    ``binary``: 'per_sample' prices each sample's input as spikes or MACs by that sample alone (prices do
    not depend on the batch); 'per_run' uses the run-wide decision per layer and step (the peers' way)."""
    if encoder not in ENCODER_MODES:
        raise ValueError(f"encoder: expected one of {ENCODER_MODES}, got {encoder!r}")
    if binary not in BINARY_MODES:
        raise ValueError(f"binary: expected one of {BINARY_MODES}, got {binary!r}")
    if trace.regime == "trev":
        # a T-RevSNN computes its stem once by design and every column at its own step only: nothing is
        # replayed, so the papers' 'encoder T times' convention has nothing to apply to
        encoder = "as_run"
    T, n = trace.timesteps, max(1, trace.samples)
    layer_rows, rows = [], []
    unit = -1
    w_slot, s_slot = slots(trace)
    for li, rec in enumerate(trace.layers):
        synaptic = bool(rec.synaptic)
        if synaptic or unit < 0:
            unit += 1
        g = rec.geometry
        rule = rec.elementwise
        is_neuron = bool(rec.neuron_model)
        spiking = rec.spiking
        leaky = is_neuron and rec.stateful and rec.neuron_model in LEAKY
        kh, kw = _pair(g["kernel_size"]) if _is_kernel(rec) else (1, 1)
        fo = fanout(rec) if synaptic else None
        dmac = dense_macs(rec)
        out_numel = float(np.prod(rec.out_shape))
        channels = int(rec.in_shape[0]) if rec.in_shape else 0
        # layer scale: the trace lists no weights for it (not a conv/linear), but gamma is C stored words
        n_weights = channels if rule == "channel_multiply" else rec.n_weights
        layer_rows.append(dict(
            layer=rec.name, kind=rec.kind, unit=unit, synaptic=synaptic, neuron=is_neuron, spiking=spiking,
            stateful=bool(rec.stateful), n_weights=n_weights, n_bias=rec.n_bias, neurons=rec.neurons,
            state_size=rec.state_size, weight_slot=w_slot[li], state_slot=s_slot[li],
            dense_macs=dmac if synaptic else 0.0, synapses=float(fo.sum()) if fo is not None else 0.0,
            in_numel=float(np.prod(rec.in_shape)), out_numel=out_numel))
        computed, nu, ev_in, ev_out, reach, reach_an, e_an, analog = _steps_as_counted(
            rec, encoder, n, binary == "per_sample")
        for t in range(T):
            c = float(computed[t])
            r = dict.fromkeys(COLUMNS, 0.0)
            r.update(layer=rec.name, kind=rec.kind, t=t, unit=unit, layer_index=li, computed=c,
                     events_in=ev_in[t], binary=1.0 - analog[t])
            if synaptic and c:
                # each sample is priced by its own input: spikes (binary) as synaptic ops, the rest as MACs
                a = analog[t]
                e_bin = ev_in[t] - e_an[t]
                r["synops"] = reach[t] - reach_an[t]
                r["entries_binary"] = e_bin
                if _is_kernel(rec):               # Lemaire Eq. 16: 2 mult + Kh*Kw adds per input event
                    r["addr_mul"] = 2 * e_bin
                    r["addr_add"] = kh * kw * e_bin
                else:                             # Lemaire Eq. 17: one add per synapse reached
                    r["addr_add"] = reach[t] - reach_an[t]
                r["macs_dense"] = dmac * a
                r["macs_nz"] = reach_an[t]
                r["dense_w_reads"] = float(rec.n_weights) * a
                r["dense_in_reads"] = float(np.prod(rec.in_shape)) * a
                r["entries_analog"] = e_an[t]
                r["addr_add"] = r["addr_add"] + _dense_addr(rec) * a
                r["packets"] = ev_in[t]
                r["bias_reads"] = float(rec.n_bias)
                r["bias_adds"] = out_numel if rec.n_bias else 0.0
            elif rule == "multiply_add" and c:
                r["macs_dense"] = dmac
                r["macs_nz"] = ev_in[t]
            elif rule == "per_event" and c:
                r["other_ops"] = ev_in[t]
            elif rule == "channel_multiply" and c:     # y = x * gamma[channel]
                r["mul_ops"] = out_numel
                r["bias_reads"] = float(channels)       # gamma, one word per channel
            elif rule == "copy" and c:                 # a copy: no arithmetic, read once, write every output
                r["copy_words"] = float(np.prod(rec.in_shape)) + out_numel
            elif rule == "carry" and c:
                # T-RevSNN turned-on state c[t] = o + alpha * c[t-1] (c[-1] = 0: at t = 0, c[0] = o)
                r["neuron_updates"] = nu[t]
                if t > 0:
                    r["state_reads"] = nu[t]            # c[t-1], carried in from the previous column
                    r["state_mul_adds"] = nu[t]
                    r["bias_reads"] = float(channels)   # alpha, one word per channel
                if rec.stateful and t < T - 1:
                    r["state_writes"] = nu[t]           # c[t], carried to the next column
                    r["state_carried_words"] = float(rec.state_size)
            elif is_neuron:
                r["neuron_updates"] = nu[t]
                if spiking:
                    r["spikes_out"] = ev_out[t]
                    r["compares"] = nu[t]
                    r["resets"] = ev_out[t]
                if leaky:
                    r["leak_ops"] = nu[t]
                if rec.stateful:
                    r["u_rw"] = nu[t]
                    if t < T - 1 and c:
                        r["state_carried_words"] = float(rec.state_size)
                else:
                    r["stateless_nu"] = nu[t]
            rows.append(r)
    layers = pd.DataFrame(layer_rows)
    frame, per_sample = _per_sample_frame(rows)
    return Counts(trace.network, trace.regime, T, trace.samples, encoder, layers, frame, per_sample)


def _per_sample_frame(rows: list[dict]) -> tuple[pd.DataFrame, dict]:
    """The rows as a frame of per-inference means, and the columns whose value differs between samples as
    [S, R] arrays (S = the run's samples, or 1, the mean sample, for traces without per-sample counts)."""
    S = max((np.size(v) for r in rows for k, v in r.items() if k in COLUMNS), default=1)
    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in COLUMNS} for r in rows],
                         columns=["layer", "kind", "t", "unit", "layer_index"])
    samples = {}
    for k in COLUMNS:
        vals = np.empty((S, len(rows)))
        for j, r in enumerate(rows):
            vals[:, j] = r[k]
        frame[k] = vals.mean(axis=0) if S > 1 else vals[0]
        if S > 1 and not (vals == vals[:1]).all():
            samples[k] = vals
    return frame, samples


def check_fanout(trace: Trace) -> list[str]:
    """Layers whose recorded fan-out map differs from the one derived here from the geometry."""
    bad = []
    for rec in trace.layers:
        if rec.synaptic and rec.fanout_map is not None:
            if not np.array_equal(fanout(rec), rec.fanout_map.astype(np.float64)):
                bad.append(rec.name)
    return bad


def spikes_per_synapse(c: Counts) -> float:
    """Synaptic ops per inference / synapses of the layers that received spikes (docs/hwmodel.md). Both sides
    count real connections only: a synapse is an (input position, output) pair that the geometry connects
    (the sum of the fan-out map), so padding taps are in neither the numerator nor the denominator."""
    r = c.rows
    spiking_layers = r[(r.binary > 0) & (r.computed > 0) & (r.synops > 0)].layer.unique()
    syn = c.layers.set_index("layer").loc[list(spiking_layers), "synapses"].sum() if len(spiking_layers) else 0
    return float(r.synops.sum() / syn) if syn else 0.0
