"""The trace: a plain record of what a run did, per layer and per timestep.

It is the only thing the hardware model (``hwmodel``) reads from a run, so it is self-contained: each
layer record carries its geometry as plain numbers, and nothing refers to engine objects.

Schema (all counts are summed over the batch; T = timesteps, B = batch size of the run):

Trace
  network      str      network name
  regime       str      'multistep' | 'oneshot' (T=1, nothing stored) | 'trev' (temporal-reversible)
               multistep: every layer runs at every timestep; neuron layers with stateful=True carry their
                 membrane (state_size words per sample) from t to t+1. RevSNN reversible blocks run this way.
               oneshot: T=1 (any network, incl. a T-RevSNN run of one column): no record is stateful.
               trev: a T-RevSNN network (snnsim.layers.trevsnn). Column t is timestep t and runs ONCE: every layer
                 instance is its own record (names 'subnet<t>.level<l>....', the official weight-key prefixes)
                 with computed[t] True only at its column; the stem runs once (computed[0] only) and feeds every
                 column; heads 'cls_blocks.<k>....' run at their column. All neurons are turned-off
                 'threshold' neurons (stateless: no membrane traffic). The only state crossing timesteps is
                 the records of kind 'state' (one per level and column, 'subnet<t>.c<l>'), stateful=True for
                 t < T-1 with state_size = C*H*W: c_l[t] is read by column t+1. So the sum of state_size
                 over the 'state' records is the state carried per inference (words written at t, read at
                 t+1), while the state held at once is one column's worth (sum over levels of C*H*W): column t
                 frees c_l[t-1] once its level l has run. (For multistep, the sum of state_size over stateful
                 records is the state held at once; it is carried T-1 times.)
  timesteps    int      T
  samples      int      number of input samples the counts are summed over
  encoding     str      'direct' | 'rate' | 'events'
  layers       list[LayerTrace], in execution order (residual blocks: the body, then the shortcut,
               then a record of kind 'add' for the sum)
  probes       dict[layer name -> dict['spikes' | 'membrane' -> float32 array [T, B, *out_shape]]]

LayerTrace
  name         str      full dotted layer name (the weight-key prefix)
  kind         str      linear | conv2d | batchnorm | pool2d | flatten | dropout | neuron | add
                        | scale | upsample | layer_scale | state   (snnsim.layers; below)
  in_shape, out_shape   per-sample shapes
  geometry     dict     plain numbers: linear {in_features, out_features, bias};
                        conv2d {in_channels, out_channels, kernel_size, stride, padding, groups, bias};
                        pool2d {op, kernel_size, stride, padding}; neuron {neuron, tau, v_threshold,
                        v_reset, decay_input, spike_rule, stateless, clip, reset_delay}; folded: names of batch norms folded in
  n_weights    int      weight words (0 for layers without weights)
  n_bias       int      bias words
  neurons      int      neurons per sample (neuron layers; 0 otherwise)
  stateful     bool     state is kept from one timestep to the next
  state_size   int      state words per sample kept across timesteps (0 if not stateful)
  computed     bool[T]  the layer ran at timestep t (a direct-encoded input layer runs once: t=0 only)
  form         str[T]   'dense' | 'event' | '' (the kernel form used; '' for layers without weights)
  events_in    int64[T] nonzero input entries (spike events, or nonzero analog values)
  binary_in    bool[T]  every input entry was 0 or 1 (spikes: synaptic ops are accumulates, else MACs)
  events_out   int64[T] nonzero outputs (spikes for spiking neuron layers)
  neuron_updates int64[T] neuron state updates (B * neurons when the layer ran, else 0)
  event_map    float32 [T, *in_shape] or None: nonzero inputs per input position (synaptic layers)
  fanout_map   float32 [*in_shape] or None: outputs each input position reaches (exact at borders
               and with stride; synaptic ops at t = sum(event_map[t] * fanout_map))
  analog_samples   int64[T] or None: samples whose input at t was not all 0/1 (synaptic layers), so that a
               sample's spike-or-MAC pricing does not depend on the other samples of the run
  event_map_analog float32 [T, *in_shape] or None: the part of event_map from those samples (None while
               every input seen was binary)
  sample_events_in  int64 [T, S] or None: nonzero input entries of each sample (S = samples, in run order)
  sample_events_out int64 [T, S] or None: nonzero outputs (spikes) of each sample
  sample_reach      float64 [T, S] or None: synaptic layers: each sample's nonzero inputs x their fan-out
  sample_analog     bool [T, S] or None: synaptic layers: the sample's input at t was not all 0/1
               (these four let hwmodel price every sample by itself: its latency and mapping included)
  What hwmodel prices a record by (set by the op, ``Op.trace_fields``; hwmodel never reads ``kind``):
  synaptic     bool     weights x input events: synaptic ops for binary inputs, MACs otherwise; the fan-out
                        comes from the geometry: {out_features} (a dense weight matrix, one address add per
                        synapse reached) or {kernel_size, stride, padding, out_channels, groups} (a kernel:
                        2 multiplies + Kh*Kw address adds per input event, Lemaire 2022 Eq. 16)
  neuron_model str      a neuron layer's model ('lif', 'plif', 'li', 'if', 'threshold', ...); '' otherwise.
                        'li' does not spike; 'lif', 'plif', 'li' leak when stateful
  elementwise  str      the arithmetic of a layer without weights, per element:
                        ''                nothing priced (flatten, dropout, scale, neuron layers)
                        'multiply_add'    one multiply-add per input element (dense MACs); per nonzero input
                                          with zero skipping (a batch norm not folded)
                        'per_event'       one operation per nonzero input entry (pooling, elementwise sums)
                        'channel_multiply' one multiply per output element by a per-channel factor (C words
                                          read per step; layer scale)
                        'copy'            each input element read once, each output element written once
                        'carry'           c = o + alpha * c_prev (the T-RevSNN state below)

Kinds and geometry added for the execution regimes (docs/regimes.md):
  conv2d       also ScaledStdConv2d and T-RevSNN's depth-wise convs: geometry adds standardize (weights were
               standardised once at load; the run is a plain conv), eps, gamma, and shared_from (the layer whose
               weights it shares across columns, '' if none; the weights are stored once).
  upsample     nearest-neighbour x scale_factor (geometry {scale_factor}); a copy, no arithmetic.
  layer_scale  y = x * gamma per channel: one multiply per element; geometry {key}.
  add          also '<block>.add_f' / '<block>.add_g' of a RevSNN reversible block (y1 = x1 + F(x2),
               y2 = x2 + G(y1), each over one channel half) and '<level>.fusion.add' of a T-RevSNN level
               (z = up(c_{l+1}[t-1]) + down(c_{l-1}[t])).
  state        a T-RevSNN turned-on state: c = o + alpha * c_prev, one multiply-add per element (alpha per
               channel: n_weights = C), neurons = neuron_updates/B = C*H*W, events_in = nonzeros of o and
               c_prev, events_out = nonzeros of c (real-valued, never binary). stateful and state_size as above;
               geometry {column, level, alpha_key, update}.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 2         # 2: the pricing fields synaptic, neuron_model, elementwise
SAMPLE_ARRAYS = ("sample_events_in", "sample_events_out", "sample_reach", "sample_analog")
ARRAYS = ("computed", "events_in", "binary_in", "events_out", "neuron_updates", "event_map", "fanout_map",
          "analog_samples", "event_map_analog") + SAMPLE_ARRAYS


@dataclass
class LayerTrace:
    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    geometry: dict
    n_weights: int
    n_bias: int
    neurons: int
    stateful: bool
    state_size: int
    computed: np.ndarray
    form: list
    events_in: np.ndarray
    binary_in: np.ndarray
    events_out: np.ndarray
    neuron_updates: np.ndarray
    event_map: np.ndarray | None = None
    fanout_map: np.ndarray | None = None
    analog_samples: np.ndarray | None = None
    event_map_analog: np.ndarray | None = None
    sample_events_in: np.ndarray | None = None
    sample_events_out: np.ndarray | None = None
    sample_reach: np.ndarray | None = None
    sample_analog: np.ndarray | None = None
    synaptic: bool = False
    neuron_model: str = ""
    elementwise: str = ""

    def sample_counts(self, t: int, B: int, *names: str) -> list[np.ndarray]:
        """The rows at step t of the named per-sample arrays (``SAMPLE_ARRAYS``) for the current batch of B
        samples, allocated [T, B] on first use; the engine adds one batch's per-sample counts into them."""
        out = []
        for name in names:
            arr = getattr(self, name)
            if arr is None:
                dtype = bool if name == "sample_analog" else np.float64 if name == "sample_reach" else np.int64
                arr = np.zeros((len(self.events_in), B), dtype)
                setattr(self, name, arr)
            out.append(arr[t])
        return out

    def note_analog(self, t0: int, analog: np.ndarray, event_map: np.ndarray) -> None:
        """Record which samples of the batch inputs of timesteps t0.. were not binary (``analog`` [steps, B]: True
        for those) and their part of the event map (``event_map`` [steps, *in_shape]); called only when some
        step's input as a whole was not binary."""
        span = slice(t0, t0 + len(analog))
        if self.analog_samples is None:
            self.analog_samples = np.zeros(len(self.events_in), np.int64)
        self.analog_samples[span] += analog.sum(axis=1)
        if self.event_map is not None and analog.any():
            if self.event_map_analog is None:
                self.event_map_analog = np.zeros_like(self.event_map)
            self.event_map_analog[span] += event_map

    @property
    def spiking(self) -> bool:
        """A neuron layer whose outputs are spikes (every neuron model but the leaky integrator 'li')."""
        return bool(self.neuron_model) and self.neuron_model != "li"

    @property
    def synops(self) -> np.ndarray:
        """Synaptic operations per timestep (events x exact fan-out); zeros for layers without weights."""
        if self.event_map is None or self.fanout_map is None:
            return np.zeros(len(self.events_in), np.float64)
        em = self.event_map.reshape(len(self.events_in), -1).astype(np.float64)
        return em @ self.fanout_map.reshape(-1).astype(np.float64)

    @property
    def macs_analog(self) -> np.ndarray:
        """The part of ``synops`` whose inputs were not binary: multiply-accumulates, not synaptic ops."""
        if self.event_map is None or self.fanout_map is None:
            return np.zeros(len(self.events_in), np.float64)
        if self.event_map_analog is None:     # hand-built or older traces: the run-wide flag
            return np.where(self.binary_in, 0.0, self.synops)
        em = self.event_map_analog.reshape(len(self.events_in), -1).astype(np.float64)
        return em @ self.fanout_map.reshape(-1).astype(np.float64)

    @property
    def synops_binary(self) -> np.ndarray:
        """Synaptic ops of binary (spike) inputs only: accumulates."""
        return self.synops - self.macs_analog


@dataclass
class Trace:
    network: str
    regime: str
    timesteps: int
    samples: int
    encoding: str
    layers: list = field(default_factory=list)
    probes: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def layer(self, name: str) -> LayerTrace:
        for rec in self.layers:
            if rec.name == name:
                return rec
        raise KeyError(f"no layer '{name}' in the trace; layers: {[r.name for r in self.layers]}")

    def merge(self, other: "Trace") -> None:
        """Add the counts of another batch of the same run."""
        self.samples += other.samples
        for a, b in zip(self.layers, other.layers):
            a.events_in += b.events_in
            a.events_out += b.events_out
            a.neuron_updates += b.neuron_updates
            a.binary_in &= b.binary_in
            if a.event_map is not None:
                a.event_map += b.event_map
            for k in ("analog_samples", "event_map_analog"):
                va, vb = getattr(a, k), getattr(b, k)
                if vb is not None:
                    setattr(a, k, vb.copy() if va is None else va + vb)
            for k in SAMPLE_ARRAYS:          # per sample: the batches' samples side by side
                va, vb = getattr(a, k), getattr(b, k)
                nb, na = (np.zeros((len(a.events_in), n), bool if k == "sample_analog" else np.float64 if
                          k == "sample_reach" else np.int64) for n in (other.samples, self.samples - other.samples))
                if va is not None or vb is not None:
                    setattr(a, k, np.concatenate([na if va is None else va, nb if vb is None else vb], axis=1))
            a.form = [fa if fa == fb else "mixed" for fa, fb in zip(a.form, b.form)]
        for name, probe in other.probes.items():
            mine = self.probes.setdefault(name, {})
            for key, arr in probe.items():
                mine[key] = np.concatenate([mine[key], arr], axis=1) if key in mine else arr

    def to_frame(self):
        """One row per layer and timestep (pandas DataFrame)."""
        import pandas as pd

        rows = []
        for rec in self.layers:
            syn = rec.synops
            for t in range(self.timesteps):
                rows.append(dict(layer=rec.name, kind=rec.kind, t=t, computed=bool(rec.computed[t]),
                                 form=rec.form[t], events_in=int(rec.events_in[t]),
                                 binary_in=bool(rec.binary_in[t]), events_out=int(rec.events_out[t]),
                                 neuron_updates=int(rec.neuron_updates[t]), synops=float(syn[t]),
                                 stateful=rec.stateful, state_size=rec.state_size))
        return pd.DataFrame(rows)

    def save(self, path: str | Path) -> None:
        """Write to one ``.npz``: a JSON header plus the arrays."""
        arrays, header = {}, {k: getattr(self, k) for k in ("network", "regime", "timesteps", "samples",
                                                            "encoding", "schema_version")}
        header["layers"] = []
        for i, rec in enumerate(self.layers):
            d = {k: v for k, v in asdict(rec).items() if not isinstance(v, np.ndarray) and v is not None}
            for k in ARRAYS:
                v = getattr(rec, k)
                if v is not None:
                    arrays[f"layer{i}/{k}"] = v
            header["layers"].append(d)
        for name, probe in self.probes.items():
            for key, arr in probe.items():
                arrays[f"probe/{name}/{key}"] = arr
        from .outputs import save_npz      # atomic, and exactly under the given name

        save_npz(path, dict(arrays, header=np.array(json.dumps(header))), "--trace", compressed=True)

    @classmethod
    def load(cls, path: str | Path) -> "Trace":
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header.get("schema_version") != SCHEMA_VERSION:
                from .errors import InputError

                raise InputError(f"{path}: a trace of schema version {header.get('schema_version')}, this snnsim "
                                 f"reads version {SCHEMA_VERSION}: run the network again with --trace")
            layers = []
            for i, d in enumerate(header.pop("layers")):
                for k in ARRAYS:
                    key = f"layer{i}/{k}"
                    d[k] = z[key] if key in z.files else None
                d["in_shape"], d["out_shape"] = tuple(d["in_shape"]), tuple(d["out_shape"])
                layers.append(LayerTrace(**d))
            probes = {}
            for key in z.files:
                if key.startswith("probe/"):
                    _, name, kind = key.rsplit("/", 2) if key.count("/") == 2 else ("", *key[6:].rsplit("/", 1))
                    probes.setdefault(name, {})[kind] = z[key]
        return cls(layers=layers, probes=probes, **header)
