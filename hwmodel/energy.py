"""Energy and latency: counts x architecture -> per-layer, per-timestep, per-component pJ, and ns.

One code path serves a single architecture and a sweep: ``evaluate(counts, params)`` takes the flat
parameter dict of ``Arch.params()`` in which any entry may be an array of V variants; every result then
has a leading variant axis. ``hwmodel.report.price(trace, arch)`` is the single-architecture front end (with
the mapping search of ``hwmodel.mapping``) and returns a ``Report``. Equations: docs/hwmodel.md.
"""

from __future__ import annotations

import numpy as np

from .counts import Counts

COMPONENTS = ("synops", "macs", "neuron", "bias", "weight_mem", "membrane_mem", "accum_mem", "event_mem",
              "noc", "addr", "other", "dram", "static")
PROXY_MAC_PJ, PROXY_AC_PJ = 4.6, 0.9      # Horowitz 2014 FP32, the papers' proxy (BICLab's SOP formula, docs/energy_sources.md)


def _p(params, key):
    """A parameter as an array that broadcasts against a trailing row axis: scalar -> 0-d, [V] -> [V, 1]."""
    v = np.asarray(params[key], np.float64)
    return v[..., None] if v.ndim else v


def _words_per_value(bits, word, narrow_scale):
    """SRAM words touched by one value: b/w with packing (narrow_words: scale), else ceil(b/w)."""
    return narrow_scale * bits / word + (1 - narrow_scale) * np.ceil(bits / word)


def _group_spill(sizes, cap_of_layer, group_start):
    """Bits of each layer that do not fit when the layers of a group fill a buffer in execution order.

    sizes [.., L]; cap_of_layer [.., L] the capacity of the layer's group; group_start [L] the index of the
    first layer of the layer's group. spill_l = clip(cum_l - cap, 0, size_l), cum within the group."""
    cum = np.cumsum(sizes, axis=-1)
    before = np.take(cum - sizes, group_start, axis=-1)   # cumulative size before the group's first layer
    return np.clip(cum - before - cap_of_layer, 0, sizes)


def evaluate(c: Counts, params: dict, each_sample: bool = False) -> dict:
    """Energy components [.., R] (pJ), totals [..], latency [..] (ns) and spills for V variants (or one).

    Every sample of the run is priced by itself (its own counts, ``Counts.per_sample``; latency is a max over
    resources, so the mean sample's latency is not the mean latency) and the result is the mean over samples;
    with ``each_sample`` the per-sample results are returned, the sample axis just before the last
    (per-row, per-unit, per-step results) or last (totals), where the result depends on the sample."""
    rows, lay = c.rows, c.layers
    col = {k: rows[k].to_numpy(np.float64) for k in rows.columns if k not in ("layer", "kind")}
    col.update(c.per_sample)
    # variants [V] get an axis for the samples: [V, 1], broadcasting against the counts' [S, R]
    params = {k: (v[:, None] if isinstance(v, np.ndarray) and v.ndim == 1 and k != "mapping" else v)
              for k, v in params.items()}
    res = _evaluate(c, params, col)
    return res if each_sample else mean_over_samples(res)


# result key -> number of trailing axes after the sample axis (0: a total per sample)
_TAILS = dict(E=1, E_static=0, total=0, latency=0, step=0, unit_pj=1, unit_ns=1, hw_steps=0, proxy=0,
              dram_bits=1, spills=1, cores_u=1, infeasible=0, too_few_cores=0, macs=1, weight_reads=1,
              acc_rw=1, hops=1, seq_steps=1, pipe_steps=1)


def mean_over_samples(res: dict) -> dict:
    """The per-sample results of ``evaluate(..., each_sample=True)`` averaged over the samples (feasible only
    if every sample is). A result without a sample axis (it depends on no sample's counts) is kept."""
    def red(x, tail, how):
        x = np.asarray(x)
        return how(x, axis=x.ndim - tail - 1) if x.ndim > tail else x

    out = {}
    for k, v in res.items():
        how = np.any if k in ("infeasible", "too_few_cores") else np.mean
        out[k] = {n: red(a, _TAILS[k], how) for n, a in v.items()} if isinstance(v, dict) else red(v, _TAILS[k], how)
    return out


def _evaluate(c: Counts, params: dict, col: dict) -> dict:
    rows, lay = c.rows, c.layers
    T, U = c.timesteps, c.n_units
    unit_of_layer = lay.unit.to_numpy()
    row_layer = rows.layer_index.to_numpy()
    row_unit = rows.unit.to_numpy()
    g = lambda k: _p(params, k)   # noqa: E731

    wb, ub, bb, ab, eb = (g(f"bits_{k}") for k in ("weight", "membrane", "bias", "activation", "event"))
    narrow = g("narrow_scale")
    sram = params["sram"]

    def per_value_pj(mem, bits):
        size = np.asarray(params[f"{mem}_bytes"], np.float64)
        word = g(f"{mem}_word")
        e_word = sram.access_pj(size)
        e_word = e_word[..., None] if e_word.ndim else e_word
        return e_word * word / sram.ref_bits * _words_per_value(bits, word, narrow)

    # --- the mapping of each unit (loop order and accumulation), as 0/1 per unit [.., U] -> per row / layer
    mp = unit_mapping(params, U)
    at_row = lambda a: np.take(a, row_unit, axis=-1)          # noqa: E731
    at_layer = lambda a: np.take(a, unit_of_layer, axis=-1)   # noqa: E731
    t_outer, t_inner, per_op = at_row(mp["t_outer"]), at_row(mp["t_inner"]), at_row(mp["per_op"])
    e_reg = lambda bits: g("e_register") * bits / 32          # noqa: E731  a register access, per value

    # --- arithmetic and accesses per row
    synaptic_row = lay.synaptic.to_numpy()[row_layer]
    nz = g("macs_nonzero")
    macs = nz * col["macs_nz"] + (1 - nz) * col["macs_dense"]
    macs_syn = macs * synaptic_row
    # dense (non-spike) layers: Lemaire's per-MAC reads, or one read per weight and per input (reuse)
    per_mac = g("mac_per_read")
    in_reads_reuse = nz * col["entries_analog"] + (1 - nz) * col["dense_in_reads"]
    dense_w = per_mac * macs_syn + (1 - per_mac) * col["dense_w_reads"]
    dense_in = per_mac * macs_syn + (1 - per_mac) * in_reads_reuse
    weight_reads = col["synops"] + dense_w
    # accumulation per op (read-modify-write of the target's partial sum for every synop AND every MAC, one
    # rule for event and dense layers) or in registers (one membrane access per neuron and step)
    acc_rw = per_op * (col["synops"] + macs_syn + col["stateless_nu"])      # reads; writes are as many
    hops = col["packets"] * g("hops")
    # timestep-innermost per output tile: every tile re-reads the input events of all T
    out_numel_row = lay.out_numel.to_numpy()[row_layer]
    tiles = 1 + t_inner * synaptic_row * (np.ceil(out_numel_row / at_row(mp["tile"])) - 1)

    E = {}
    E["synops"] = g("e_ac") * col["synops"]
    E["macs"] = g("e_mac") * macs
    # T-RevSNN's turned-on state c = o + alpha * c_prev is its neuron: leak by a real multiply (alpha is any
    # per-channel value, not a shift) and one add
    E["neuron"] = (g("e_leak") * col["leak_ops"] + g("e_compare") * col["compares"]
                   + g("e_reset") * col["resets"] + g("e_neuron_update") * col["neuron_updates"]
                   + (g("e_mul") + g("e_add")) * col["state_mul_adds"])
    E["bias"] = g("e_add") * col["bias_adds"] + per_value_pj("weights", bb) * col["bias_reads"]
    E["weight_mem"] = per_value_pj("weights", wb) * weight_reads
    state_rw = 2 * col["u_rw"] + col["state_reads"] + col["state_writes"]    # the state buffer, b_u words
    # timestep-innermost: a tile's membranes and partial sums stay in registers for all T
    u_rw2 = 2 * col["u_rw"]
    E["membrane_mem"] = (per_value_pj("membrane", ub) * (state_rw - t_inner * u_rw2)
                         + e_reg(ub) * t_inner * u_rw2)
    E["accum_mem"] = ((1 - t_inner) * per_value_pj("membrane", ub) + t_inner * e_reg(ub)) * 2 * acc_rw
    E["event_mem"] = (per_value_pj("events", eb) * (1 + tiles) * col["entries_binary"]
                      + per_value_pj("events", ab) * (col["entries_analog"] + dense_in * tiles + col["copy_words"]))
    E["noc"] = g("e_spike") * col["packets"] + g("e_hop") * hops
    E["addr"] = g("e_mul") * col["addr_mul"] + g("e_add") * col["addr_add"]
    E["other"] = g("e_add") * col["other_ops"] + g("e_mul") * col["mul_ops"]

    # --- placement: cores per unit, then what spills to DRAM
    cores = np.asarray(params["cores"], np.float64)[..., None]           # [V,1] or [1]
    pipelined = np.asarray(params["pipelined"], np.float64)[..., None]
    w_bits = lay.n_weights.to_numpy() * wb + lay.n_bias.to_numpy() * bb                 # [.., L]
    s_bits = lay.state_size.to_numpy() * ub
    # sequential mapping: layers sharing stored weights or a state slot (T-RevSNN's reused convs, its c_l of
    # every column) occupy the space once; pipelined, each unit keeps its own copy in its own cores
    w_slot, s_slot = lay.weight_slot.to_numpy(), lay.state_slot.to_numpy()
    own = np.arange(len(w_slot))
    w_bits_slot, s_bits_slot = w_bits * (w_slot == own), s_bits * (s_slot == own)
    n_bits = lay.neurons.to_numpy() * ub
    w_cap = np.asarray(params["weights_bytes"], np.float64)[..., None] * 8
    u_cap = np.asarray(params["membrane_bytes"], np.float64)[..., None] * 8
    e_cap = np.asarray(params["events_bytes"], np.float64)[..., None] * 8
    onehot_u = (unit_of_layer[:, None] == np.arange(U)[None, :]).astype(np.float64)     # [L, U]
    # pipelined: a unit gets the cores its weights and neurons need (Loihi-style); if the chip has too few,
    # cores are scaled down in proportion and the excess spills to DRAM
    need = np.maximum(1, np.maximum(np.ceil((w_bits @ onehot_u) / w_cap), np.ceil((n_bits @ onehot_u) / u_cap)))
    total_need = need.sum(axis=-1, keepdims=True)
    scaled = np.maximum(1, np.floor(need * cores / total_need))
    pipe_cores = np.where(total_need <= cores, need, scaled)
    cores_u = pipelined * pipe_cores + (1 - pipelined) * cores * np.ones(U)             # [.., U]
    too_few_cores = (pipelined[..., 0] > 0) & (U > cores[..., 0])

    first_of_unit = np.searchsorted(unit_of_layer, unit_of_layer)       # units are contiguous
    start = np.where(pipelined > 0, first_of_unit, 0).astype(int)
    cores_l = np.take(cores_u, unit_of_layer, axis=-1)
    # what does not fit is that of the slot holders; every user of a slot streams what its slot spilled
    w_spill = _group_spill_v(pipelined * w_bits + (1 - pipelined) * w_bits_slot, cores_l * w_cap, start)
    s_spill = _group_spill_v(pipelined * s_bits + (1 - pipelined) * s_bits_slot, cores_l * u_cap, start)
    w_spill_layer = pipelined * w_spill + (1 - pipelined) * np.take(w_spill, w_slot, axis=-1)
    s_spill_layer = pipelined * s_spill + (1 - pipelined) * np.take(s_spill, s_slot, axis=-1)
    # layer-major loop orders: a layer's membranes are held only while it runs its T steps, alone
    to_l, ti_l = at_layer(mp["t_outer"]), at_layer(mp["t_inner"])
    s_alone = np.clip(s_bits_slot - cores_l * u_cap, 0, None)
    s_spill_layer = to_l * s_spill_layer + (1 - to_l) * (1 - ti_l) * np.take(s_alone, s_slot, axis=-1)

    computed = col["computed"]
    stateful_row = lay.stateful.to_numpy()[row_layer]
    w_bits_row = np.take(w_bits, row_layer, axis=-1)
    # spilled weights: streamed at every step (timestep-outer) or once per inference (layer-major orders)
    runs = np.maximum(1, np.bincount(row_layer, weights=computed, minlength=len(lay)))[row_layer]
    w_times = t_outer * computed + (1 - t_outer) * computed / runs
    dram_w = synaptic_row * (g("refetch") * computed * w_bits_row
                             + (1 - g("refetch")) * w_times * np.take(w_spill_layer, row_layer, axis=-1))
    dram_u = stateful_row * computed * 2 * np.take(s_spill_layer, row_layer, axis=-1)
    # accumulators of a unit without carried state (stateless and one-shot layers) under per-op accumulation:
    # they share the membrane buffers with the state held at the time; the share that does not fit is
    # read and written in DRAM
    acc_need = accumulator_bits(lay, ub)                                               # [.., L]
    held = np.sum(s_bits_slot * to_l, axis=-1, keepdims=True)
    room = np.maximum(0, cores_l * u_cap - to_l * np.minimum(held, cores_l * u_cap))
    acc_frac = np.where(acc_need > 0, np.clip(acc_need - room, 0, None) / np.maximum(acc_need, 1e-300), 0.0)
    acc_frac_u = _per_unit_max(acc_frac * (1 - ti_l), unit_of_layer, U)
    dram_acc = 2 * acc_rw * at_row(acc_frac_u) * ub
    # event queues: one step of a layer's input (timestep-outer) or all T steps of it (layer-major orders)
    queue_bits = col["entries_binary"] * eb + col["entries_analog"] * ab
    cap_row = np.take(cores_u, row_unit, axis=-1) * e_cap
    step_spill = np.maximum(0, queue_bits - cap_row)
    q_unit = _per_unit_sum(np.broadcast_to(queue_bits, np.broadcast_shapes(np.shape(queue_bits), np.shape(t_outer))),
                           row_unit, U)
    all_spill_u = np.maximum(0, q_unit - cores_u * e_cap)
    share = queue_bits / np.maximum(at_row(q_unit), 1e-300)
    e_spill = t_outer * step_spill + (1 - t_outer) * at_row(all_spill_u) * share
    dram_bits = dram_w + dram_u + dram_acc + 2 * e_spill
    E["dram"] = g("dram_pj_bit") * dram_bits

    no_dram = np.asarray(params["has_dram"], np.float64) == 0
    spills = dict(weights=w_spill, membrane=s_spill_layer, events=e_spill, accumulators=acc_frac * acc_need)
    spilled_u = (_per_unit_sum(w_spill_layer + s_spill_layer + acc_frac * acc_need, unit_of_layer, U)
                 + _per_unit_sum(e_spill, row_unit, U))
    infeasible_u = np.asarray(no_dram)[..., None] & (spilled_u > 0)
    infeasible = too_few_cores | np.any(infeasible_u, axis=-1)

    # --- latency: per (unit, t) core time = max(compute, memory, NoC) over the unit's cores
    M = (row_unit[:, None] * T + rows.t.to_numpy()[:, None] == np.arange(U * T)[None, :]).astype(np.float64)
    per_ut = lambda x: (np.broadcast_to(x, np.broadcast_shapes(np.shape(x), (len(rows),))) @ M  # noqa: E731
                        ).reshape(np.shape(x)[:-1] + (U, T) if np.ndim(x) > 1 else (U, T))
    compute = per_ut((col["synops"] * g("t_synop") + macs * g("t_mac") + col["neuron_updates"] * g("t_neuron")
                      + col["packets"] * g("t_packet") + (col["other_ops"] + col["mul_ops"]) * g("t_op"))
                     / g("pes"))
    w_words = per_ut(weight_reads * _words_per_value(wb, g("weights_word"), narrow)
                     + col["bias_reads"] * _words_per_value(bb, g("weights_word"), narrow))
    u_words = per_ut(((state_rw - t_inner * u_rw2) + 2 * acc_rw * (1 - t_inner))
                     * _words_per_value(ub, g("membrane_word"), narrow))
    e_words = per_ut(((1 + tiles) * col["entries_binary"]) * _words_per_value(eb, g("events_word"), narrow)
                     + (col["entries_analog"] + dense_in * tiles + col["copy_words"])
                     * _words_per_value(ab, g("events_word"), narrow))
    t_sram = np.asarray(params["t_sram"], np.float64)[..., None, None]
    memory = np.maximum(np.maximum(w_words, u_words), e_words) * t_sram
    noc = per_ut(hops * g("t_hop"))
    cu = cores_u[..., :, None]
    core = np.maximum(np.maximum(compute, memory), noc) / cu                       # [.., U, T]
    dram_ns = per_ut(dram_bits) / (np.asarray(params["dram_gb_s"], np.float64)[..., None, None] * 8)
    barrier = np.asarray(params["t_barrier"], np.float64)

    seq_steps = np.maximum(core, dram_ns).sum(axis=-2) + barrier[..., None]        # [.., T]
    H = T + U - 1                                       # pipelined: unit u works on step t at hw step t+u
    core, dram_ns = np.broadcast_arrays(core, dram_ns)
    pc = np.zeros(core.shape[:-1] + (H,))
    pd_ = np.zeros_like(pc)
    for u in range(U):
        pc[..., u, u:u + T] = core[..., u, :]
        pd_[..., u, u:u + T] = dram_ns[..., u, :]
    pipe_steps = np.maximum(pc.max(axis=-2), pd_.sum(axis=-2)) + barrier[..., None]  # [.., H]
    pip = pipelined[..., 0]
    latency = pip * pipe_steps.sum(-1) + (1 - pip) * seq_steps.sum(-1)
    hw_steps = pip * H + (1 - pip) * T
    # leakage: logic per core and SRAM per KiB of every core's buffers (mW x ns = pJ)
    sram_kib = np.asarray(params["cores"], np.float64) * sum(
        np.asarray(params[f"{m}_bytes"], np.float64) for m in ("weights", "membrane", "events")) / 1024
    p_static = (np.asarray(params["static_mw"], np.float64) * np.asarray(params["cores"], np.float64)
                + np.asarray(params.get("static_mw_kib", 0.0), np.float64) * sram_kib)
    E_static = p_static * latency

    total = sum(np.sum(e, axis=-1) for e in E.values()) + E_static
    proxy = PROXY_MAC_PJ * macs.sum(-1) + PROXY_AC_PJ * col["synops"].sum(-1)
    # per unit: time (its share of the sequential schedule) and energy with its share of the leakage
    unit_ns = np.where(pipelined > 0, core.sum(-1), np.maximum(core, dram_ns).sum(-1))          # [.., U]
    unit_pj = _per_unit_sum(sum(np.broadcast_to(e, np.broadcast_shapes(np.shape(e), (len(rows),)))
                                for e in E.values()), row_unit, U) + p_static[..., None] * unit_ns
    unit_pj = np.where(infeasible_u, np.inf, unit_pj)
    unit_ns = np.where(infeasible_u, np.inf, unit_ns)
    return dict(E=E, E_static=E_static, total=total, latency=latency, step=latency / hw_steps,
                unit_pj=unit_pj, unit_ns=unit_ns,
                hw_steps=hw_steps, proxy=proxy, dram_bits=dram_bits, spills=spills, cores_u=cores_u,
                infeasible=infeasible, too_few_cores=too_few_cores, macs=macs, weight_reads=weight_reads,
                acc_rw=acc_rw, hops=hops, seq_steps=seq_steps, pipe_steps=pipe_steps)


def unit_mapping(params: dict, U: int) -> dict:
    """Per unit [.., U]: t_outer (timestep loop outside the layer loop), t_inner (timestep innermost, per
    output tile of ``tile`` neurons), per_op (accumulation per op, else in registers). Without a ``mapping``
    entry: timestep-outer with the architecture's membrane switch (the fixed schedule)."""
    m = params.get("mapping")
    if m is None:
        one = np.ones(U)
        return dict(t_outer=one, t_inner=0 * one, per_op=np.asarray(params["per_synop"], np.float64)[..., None] * one,
                    tile=np.full(U, np.inf))
    return {k: np.asarray(m[k], np.float64) for k in ("t_outer", "t_inner", "per_op", "tile")}


def accumulator_bits(lay, ub):
    """Bits of partial sums a layer with weights needs while it runs when its unit carries no state (its
    outputs, at membrane width); 0 where a stateful neuron's membrane is the accumulator."""
    unit = lay.unit.to_numpy()
    stateful_unit = np.bincount(unit, weights=lay.stateful.to_numpy(np.float64), minlength=unit.max() + 1) > 0
    need = lay.out_numel.to_numpy() * lay.synaptic.to_numpy() * ~stateful_unit[unit]
    return need * ub


def _per_unit_sum(x, idx, U):
    """Sum the last axis of x [.., N] into U groups given by idx [N]."""
    onehot = (np.asarray(idx)[:, None] == np.arange(U)[None, :]).astype(np.float64)
    return np.asarray(x, np.float64) @ onehot


def _per_unit_max(x, idx, U):
    x = np.asarray(x, np.float64)
    out = np.zeros(x.shape[:-1] + (U,))
    for u in range(U):
        sel = np.asarray(idx) == u
        if sel.any():
            out[..., u] = x[..., sel].max(axis=-1)
    return out


def _group_spill_v(sizes, cap, start):
    """_group_spill with ``start`` per variant ([.., L] via the pipelined switch) or shared ([L])."""
    sizes = np.broadcast_to(sizes, np.broadcast_shapes(np.shape(sizes), np.shape(cap)))
    if start.ndim == 1:
        return _group_spill(sizes, cap, start)
    start = np.broadcast_to(start, sizes.shape)
    cum = np.cumsum(sizes, axis=-1)
    before = np.take_along_axis(cum - sizes, start, axis=-1)
    return np.clip(cum - before - cap, 0, sizes)
