"""Architecture as data: an accelerator described in YAML, validated once, flattened to plain numbers.

Any numeric constant may be written bare (``ac: 0.05``) or with its source
(``ac: {value: 0.05, source: "Horowitz 2014, 16-bit add"}``); timing constants may also be given in
clock cycles (``synop: {cycles: 1, source: ...}``, converted with ``clock_mhz``). Sources are kept in
``Arch.sources`` and printed with every report (``Arch.constants()``).

The pricing code never reads the dataclasses directly: ``Arch.params()`` flattens them to a dict of
numbers (switches as 0/1), so a sweep can replace any entry by an array of variants (``hwmodel.sweep``).
See docs/hwmodel.md for the meaning of every field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnsim.errors import SnnsimError
from snnsim.yamlfile import FieldReader

PRESET_DIR = Path(__file__).resolve().parent / "presets"
MEMORIES = ("weights", "membrane", "events")
BITS = ("weight", "membrane", "bias", "activation", "event")
ENERGIES = ("ac", "mac", "add", "mul", "compare", "leak", "reset", "neuron_update", "spike", "hop", "register")
TIMINGS = ("synop", "mac", "neuron", "packet", "op", "hop", "sram", "barrier")
DATAFLOW = {   # switch -> allowed values, the first is the default
    "membrane": ("per_neuron", "per_synop"),     # membrane read-modify-write once per neuron-step, or per synop
    "weights": ("stationary", "refetch"),        # weights kept on chip across timesteps, or re-read from DRAM
    "encoder": ("as_run", "every_step"),         # count a run-once input layer once, or T times (papers)
    "macs": ("dense", "nonzero"),                # non-spike inputs: every MAC, or only nonzero inputs
    "mac_reads": ("reuse", "per_mac"),           # dense layers: each weight/input read once, or per MAC
    "narrow_words": ("scale", "full"),           # a value narrower than the word: pay b/word or a full word
}
MAPPINGS = ("sequential", "pipelined")
LOOPS = {("timestep", "layer", "tile"), ("layer", "timestep", "tile"), ("layer", "tile", "timestep")}
ACCUMULATE = ("per_op", "registers")


@dataclass(frozen=True)
class LoopMapping:
    """One schedule of a layer (Timeloop-style loop nest, outermost first) the mapper may choose.

    timestep, layer, tile: timestep outermost runs every layer once per step (weights and membranes of all
    layers held across steps); layer outermost runs a layer for all T before the next (SATA: weights loaded
    once; only that layer's membranes held); timestep innermost runs all T of an output tile of
    ``tile_neurons`` before the next (SpinalFlow, LoAS: the tile's membranes stay in registers). accumulate:
    partial sums read-modify-written in the membrane buffer per op, or kept in registers."""

    name: str
    loops: tuple
    accumulate: str
    tile_neurons: float = float("inf")
    source: str = ""

    @property
    def t_outer(self) -> bool:
        return self.loops[0] == "timestep"

    @property
    def t_inner(self) -> bool:
        return self.loops[-1] == "timestep"
SRAM_LAWS = ("loglog", "linear", "table", "fixed")
GRADED = ("price", "refuse")      # layers with graded (non-spike) inputs: price them as MACs, or refuse


class ArchError(SnnsimError):
    """An architecture file (or preset name) is malformed, or a network cannot be placed on it."""

    def __init__(self, path: str, message: str, source: str | None = None):
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}" if path else f"{where}{message}")


@dataclass(frozen=True)
class Memory:
    size_bytes: int      # per core
    word_bits: int       # access width


@dataclass(frozen=True)
class SramLaw:
    """Energy of one access of ``ref_bits`` as a function of the memory's size (pJ)."""

    law: str = "fixed"
    per_bit: float = 0.0          # linear: E = per_bit * size_bits + base   (Lemaire 2022)
    base: float = 0.0
    points: tuple = ()            # table: ((size_bytes, pJ), ...) interpolated linearly, clamped at the ends;
    #                               loglog: the same points, straight lines in log(size)-log(E), extended
    #                               beyond the ends along the end segments (no floor, no ceiling)
    value: float = 0.0            # fixed
    ref_bits: int = 64

    def access_pj(self, size_bytes):
        size = np.asarray(size_bytes, np.float64)
        if self.law == "linear":
            return self.per_bit * size * 8.0 + self.base
        if self.law == "table":
            xs, ys = zip(*self.points)
            return np.interp(size, xs, ys)
        if self.law == "loglog":
            lx, ly = np.log(np.array(self.points, np.float64)).T
            x = np.log(np.maximum(size, 1e-30))
            i = np.clip(np.searchsorted(lx, x) - 1, 0, len(lx) - 2)
            slope = (ly[i + 1] - ly[i]) / (lx[i + 1] - lx[i])
            return np.exp(ly[i] + slope * (x - lx[i]))
        return np.zeros_like(size) + self.value


@dataclass(frozen=True)
class Arch:
    name: str
    description: str
    source: str
    cores: int
    pes_per_core: int
    clock_mhz: float
    mapping: str
    bits: dict
    memories: dict                # name -> Memory
    dram: dict | None             # {pj_per_bit, bandwidth_gb_s} or None (no DRAM: everything must fit)
    mean_hops: float
    dataflow: dict
    energy: dict                  # pJ per operation
    sram: SramLaw
    static_mw_per_core: float
    timing: dict                  # ns per operation per PE (sram: per word access per port)
    sources: dict = field(default_factory=dict)   # field path -> source text
    path: str | None = None
    static_mw_per_kib: float = 0.0   # SRAM leakage per KiB of on-chip buffer (every core's buffers)
    graded_inputs: str = "price"     # 'refuse': a layer with graded inputs is an error (binary-spike chips)
    mappings: tuple = ()             # LoopMapping choices; empty: the fixed schedule of the dataflow switches

    def loop_mappings(self) -> tuple:
        """The mapper's choices; without a ``mappings`` section, one: timestep-outer with the membrane switch."""
        if self.mappings:
            return self.mappings
        acc = "per_op" if self.dataflow["membrane"] == "per_synop" else "registers"
        return (LoopMapping("fixed", ("timestep", "layer", "tile"), acc, source="dataflow switches"),)

    def params(self) -> dict:
        """Every number the pricing needs, flat; switches are 0/1. A sweep replaces entries by arrays."""
        p = dict(cores=self.cores, pes=self.pes_per_core, hops=self.mean_hops,
                 static_mw=self.static_mw_per_core, static_mw_kib=self.static_mw_per_kib,
                 pipelined=float(self.mapping == "pipelined"),
                 has_dram=float(self.dram is not None),
                 dram_pj_bit=self.dram["pj_per_bit"] if self.dram else 0.0,
                 dram_gb_s=self.dram["bandwidth_gb_s"] if self.dram else 1.0)
        for k in BITS:
            p[f"bits_{k}"] = self.bits[k]
        for k in MEMORIES:
            p[f"{k}_bytes"] = self.memories[k].size_bytes
            p[f"{k}_word"] = self.memories[k].word_bits
        for k in ENERGIES:
            p[f"e_{k}"] = self.energy[k]
        for k in TIMINGS:
            p[f"t_{k}"] = self.timing[k]
        p["per_synop"] = float(self.dataflow["membrane"] == "per_synop")
        p["refetch"] = float(self.dataflow["weights"] == "refetch")
        p["macs_nonzero"] = float(self.dataflow["macs"] == "nonzero")
        p["mac_per_read"] = float(self.dataflow["mac_reads"] == "per_mac")
        p["narrow_scale"] = float(self.dataflow["narrow_words"] == "scale")
        p["sram"] = self.sram          # a law, not a number: evaluated on (possibly swept) sizes
        return p

    def constants(self):
        """Every constant with its unit and source (pandas DataFrame), as repeated in reports."""
        import pandas as pd

        rows = [("cores", self.cores, "", "cores"), ("pes_per_core", self.pes_per_core, "", "pes_per_core"),
                ("clock_mhz", self.clock_mhz, "MHz", "clock_mhz"), ("mapping", self.mapping, "", "mapping"),
                ("noc.mean_hops", self.mean_hops, "hops/packet", "noc.mean_hops"),
                ("static_mw_per_core", self.static_mw_per_core, "mW", "static_mw_per_core"),
                ("static_mw_per_kib", self.static_mw_per_kib, "mW/KiB", "static_mw_per_kib"),
                ("graded_inputs", self.graded_inputs, "", "graded_inputs")]
        rows += [(f"bits.{k}", v, "bit", f"bits.{k}") for k, v in self.bits.items()]
        for k, m in self.memories.items():
            rows.append((f"memories.{k}.size", m.size_bytes, "B/core", f"memories.{k}.size_kib"))
            rows.append((f"memories.{k}.word_bits", m.word_bits, "bit", f"memories.{k}.word_bits"))
        if self.dram:
            rows += [("dram.pj_per_bit", self.dram["pj_per_bit"], "pJ/bit", "dram.pj_per_bit"),
                     ("dram.bandwidth_gb_s", self.dram["bandwidth_gb_s"], "GB/s", "dram.bandwidth_gb_s")]
        rows += [(f"dataflow.{k}", v, "", f"dataflow.{k}") for k, v in self.dataflow.items()]
        rows += [(f"energy_pj.{k}", v, "pJ", f"energy_pj.{k}") for k, v in self.energy.items()]
        law = self.sram
        desc = {"linear": f"{law.per_bit:g}*size_bits + {law.base:g}", "fixed": f"{law.value:g}",
                "table": "interp " + ", ".join(f"{s:g}B:{e:g}" for s, e in law.points),
                "loglog": "log-log interp " + ", ".join(f"{s:g}B:{e:g}" for s, e in law.points)}[law.law]
        rows.append(("energy_pj.sram", desc, f"pJ per {law.ref_bits}-bit access", "energy_pj.sram"))
        rows += [(f"timing_ns.{k}", v, "ns", f"timing_ns.{k}") for k, v in self.timing.items()]
        out = [dict(constant=c, value=v, unit=u, source=self.sources.get(s, "")) for c, v, u, s in rows]
        for m in self.mappings:
            tile = f", tile {m.tile_neurons:g} neurons" if m.t_inner else ""
            out.append(dict(constant=f"mappings.{m.name}", value=f"{' > '.join(m.loops)}, {m.accumulate}{tile}",
                            unit="loops outer > inner", source=m.source))
        return pd.DataFrame(out)


# ----------------------------------------------------------------------------- reading YAML
def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:                 # an integer beyond float's range
        return False


class _Reader(FieldReader):
    """Typed reads from one mapping of an architecture file; every error names the YAML path of the field.
    ``sources``: where each constant comes from, filled in as they are read."""

    error = ArchError

    def __init__(self, raw, path, src, sources):
        if not isinstance(raw, dict):
            raise ArchError(path or "(top level)", f"expected a mapping, got {type(raw).__name__}", src)
        super().__init__(raw, path, src)
        self.sources = sources

    def has(self, key):
        return key in self.raw

    def sub(self, key, required=True):
        v = self.get(key, {} if not required else None, required)
        return _Reader(v if v is not None else {}, self.where(key), self.source, self.sources)

    def sourced(self, key, v: dict) -> "_Reader":
        """A reader of ``{value|cycles: ..., source: "..."}`` that has recorded the source of ``key``."""
        sub = _Reader(v, self.where(key), self.source, self.sources)
        src = sub.get("source")
        if src is not None:
            if not isinstance(src, str):
                raise sub.err("source", "expected a string")
            self.sources[self.where(key)] = src
        return sub

    def number(self, key, default=None, required=False, positive=False, integer=False, clock_mhz=None):
        v = self.get(key, default, required)
        if isinstance(v, dict):           # {value: x, source: "..."} or {cycles: n, source: "..."}
            sub = self.sourced(key, v)
            if "cycles" in v and clock_mhz is not None:
                cyc = sub.number("cycles", required=True)
                sub.done()
                return cyc * 1000.0 / clock_mhz
            v = sub.number("value", required=True, positive=positive, integer=integer)
            sub.done()
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
            raise self.err(key, f"expected a finite number, got {v!r}")
        if v < 0 or (positive and v == 0):
            raise self.err(key, f"must be {'positive' if positive else 'non-negative'}, got {v!r}")
        if integer and v != int(v):
            raise self.err(key, f"expected a whole number, got {v!r}")
        return int(v) if integer else float(v)

    def choice(self, key, choices):
        v = self.get(key, choices[0])
        if isinstance(v, dict):           # {value: name, source: "..."}
            sub = self.sourced(key, v)
            v = sub.get("value", required=True)
            sub.done()
        if v not in choices:
            raise self.err(key, f"expected one of {', '.join(choices)}, got {v!r}")
        return v

    def text(self, key, default=""):
        v = self.get(key, default)
        if not isinstance(v, str):
            raise self.err(key, f"expected a string, got {v!r}")
        return v


def _memory(r: _Reader, name: str) -> Memory:
    m = r.sub(name)
    size = m.number("size_kib", required=True, positive=True) * 1024
    word = m.number("word_bits", 64, positive=True, integer=True)
    m.done()
    if size < word / 8:
        raise m.err("size_kib", f"{size:g} bytes cannot hold one {word}-bit word")
    return Memory(int(round(size)), word)


def _sram(r: _Reader) -> SramLaw:
    if not r.has("law"):
        raise r.err("law", f"missing (required): one of {', '.join(SRAM_LAWS)}")
    law = r.choice("law", SRAM_LAWS)
    ref = r.number("ref_bits", 64, positive=True, integer=True)
    src = r.get("source")
    if src is not None:
        r.sources[r.path] = str(src)
    if law == "linear":
        out = SramLaw("linear", r.number("per_bit", required=True), r.number("base", required=True), ref_bits=ref)
    elif law in ("table", "loglog"):
        pts = r.get("points", required=True)
        ok = (isinstance(pts, list) and len(pts) >= 1 and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(e, (int, float)) and not isinstance(e, bool)
                                                        and e >= 0 for e in p) for p in pts))
        if not ok or any(b[0] <= a[0] for a, b in zip(pts, pts[1:])) or pts[0][0] <= 0:
            raise r.err("points", "expected [[size_bytes, pJ], ...] with positive sizes in increasing order")
        if law == "loglog" and (len(pts) < 2 or min(e for _, e in pts) <= 0):
            raise r.err("points", "loglog needs at least two points with positive energies")
        out = SramLaw(law, points=tuple((float(s), float(e)) for s, e in pts), ref_bits=ref)
    else:
        out = SramLaw("fixed", value=r.number("value", required=True), ref_bits=ref)
    r.done()
    return out


def _mappings(r: _Reader, placement: str, pes_total: int) -> tuple:
    """The ``mappings`` list: [{name, loops: [timestep|layer|tile, ...], accumulate, tile_neurons, source}]."""
    raw = r.get("mappings")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise r.err("mappings", "expected a non-empty list of {name, loops, accumulate}")
    out, names = [], set()
    for i, item in enumerate(raw):
        m = _Reader(item, r.where(f"mappings[{i}]"), r.source, r.sources)
        name = m.text("name")
        if not name or name in names:
            raise m.err("name", f"expected a unique, non-empty name, got {name!r}")
        loops = m.get("loops", required=True)
        if not isinstance(loops, list) or tuple(loops) not in LOOPS:
            raise m.err("loops", "expected one of " + "; ".join(str(list(x)) for x in sorted(LOOPS))
                        + f", got {loops!r}")
        acc = m.choice("accumulate", ACCUMULATE)
        tile = m.number("tile_neurons", float(pes_total), positive=True)
        src = m.text("source")
        m.done()
        lm = LoopMapping(name, tuple(loops), acc, tile, src)
        if lm.t_inner and acc != "registers":
            raise m.err("accumulate", "timestep innermost keeps a tile's membranes in registers: 'registers'")
        if placement == "pipelined" and not lm.t_outer:
            raise m.err("loops", "the pipelined placement runs every layer at every step: timestep outermost only")
        names.add(name)
        out.append(lm)
    return tuple(out)


def parse_arch(raw, source: str | None = None) -> Arch:
    """Validate a parsed YAML document and return the architecture."""
    sources: dict = {}
    r = _Reader(raw, "", source, sources)
    name = r.text("name", "arch")
    desc = r.text("description")
    src = r.text("source")
    cores = r.number("cores", required=True, positive=True, integer=True)
    pes = r.number("pes_per_core", required=True, positive=True, integer=True)
    clock = r.number("clock_mhz", required=True, positive=True)
    mapping = r.choice("mapping", MAPPINGS)

    b = r.sub("bits")
    bits = {k: b.number(k, required=True, positive=True, integer=True) for k in BITS}
    b.done()
    m = r.sub("memories")
    memories = {k: _memory(m, k) for k in MEMORIES}
    m.done()
    dram = None
    if r.get("dram") is not None:
        d = r.sub("dram")
        dram = {"pj_per_bit": d.number("pj_per_bit", required=True),
                "bandwidth_gb_s": d.number("bandwidth_gb_s", required=True, positive=True)}
        d.done()
    n = r.sub("noc")
    hops = n.number("mean_hops", required=True)
    n.done()

    df = r.sub("dataflow", required=False)
    dataflow = {k: df.choice(k, v) for k, v in DATAFLOW.items()}
    df.done()
    if dataflow["weights"] == "refetch" and dram is None:
        raise ArchError("dataflow.weights", "'refetch' re-reads weights from DRAM every timestep, but the "
                        "architecture has no dram section", source)

    e = r.sub("energy_pj")
    energy = {k: e.number(k, 0.0) for k in ENERGIES}
    sram = _sram(e.sub("sram"))
    e.done()
    static = r.number("static_mw_per_core", 0.0)
    static_kib = r.number("static_mw_per_kib", 0.0)
    graded = r.choice("graded_inputs", GRADED)
    loop_maps = _mappings(r, mapping, cores * pes)
    t = r.sub("timing_ns")
    timing = {k: t.number(k, 0.0, clock_mhz=clock) for k in TIMINGS}
    t.done()
    r.done()
    return Arch(name, desc, src, cores, pes, clock, mapping, bits, memories, dram, hops, dataflow, energy,
                sram, static, timing, sources, source, static_kib, graded, loop_maps)


def presets() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}


def load_arch(name_or_path: str | Path) -> Arch:
    """A preset name (``proxy45``, ``evt45``, ``loihi``) or a path to an architecture YAML file."""
    s = str(name_or_path)
    path = presets().get(s, Path(s))
    if not path.exists():
        raise ArchError("--arch", f"'{s}' is neither a preset ({', '.join(presets())}) nor an existing file")
    from snnsim.yamlfile import read_yaml    # no aliases, bounded size and depth, UTF-8, text keys

    raw = read_yaml(path, lambda msg: ArchError("", msg, str(path)), "architecture file")
    return parse_arch(raw, str(path))


def with_dataflow(arch: Arch, **switches) -> Arch:
    """A copy with some dataflow switches changed (e.g. ``encoder='every_step'``)."""
    from dataclasses import replace

    df = dict(arch.dataflow)
    for k, v in switches.items():
        if k not in DATAFLOW or v not in DATAFLOW[k]:
            raise ArchError(f"dataflow.{k}", f"expected one of {', '.join(DATAFLOW.get(k, ()))}, got {v!r}")
        df[k] = v
    return replace(arch, dataflow=df)


CONSTANTS_CSV = PRESET_DIR / "hw_constants.csv"


def constants_table():
    """Every constant of every preset with its unit and source (pandas DataFrame, one row per constant)."""
    import pandas as pd

    return pd.concat([load_arch(name).constants().assign(preset=name) for name in presets()], ignore_index=True)[
        ["preset", "constant", "value", "unit", "source"]]


def write_constants_csv(path: Path = CONSTANTS_CSV) -> Path:
    """Regenerate hwmodel/presets/hw_constants.csv from the presets (atomic write)."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=Path(path).parent, suffix=".csv")
    os.close(fd)
    constants_table().to_csv(tmp, index=False)
    os.replace(tmp, path)
    return Path(path)
