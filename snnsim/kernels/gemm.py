"""A single-threaded sgemm of our own: packed panels and an 8 x 32 register tile written as LLVM IR.

The OpenBLAS that NumPy bundles picks its kernel for the CPU it finds, or the one ``OPENBLAS_CORETYPE`` names;
on the development machine the environment holds it to its Haswell kernel (AVX2), on a core with AVX-512 units
(``python benchmarks/gemm_peak.py`` sets the two side by side). This tile is 16 vector accumulators of 16
float32 (8 rows x 32 columns) updated by fused multiply-adds over a packed panel of A (8 rows, K-major) and of B
(32 columns, K-major), kept in registers across the K loop: plain LLVM vector IR (``llvm.fma.v16f32``), which
LLVM lowers to AVX-512 where the CPU has it and to pairs of AVX2 registers (correct, but spilling: slower) where
it does not, so that ``USE`` is true only for AVX-512.

``gather_tile``: the same tile with its 8 rows read in place rather than from a packed panel (each row at its
own base, each k at an offset common to the rows): the dense conv of kernels/conv_tiled.py.

``gemm(M, N, K, a, b, beta, c)``: c[M, N] = a[M, K] @ b[K, N] (+ c when beta is 1), row-major and contiguous.
K is taken in blocks of ``KC``; within a block every element of c is one chain of fused multiply-adds in
increasing k, from zero, and the blocks' sums are added to c in increasing k. That order depends on nothing else
(not on M, N, the tiling or the threads), so a result is the same whatever part of a larger product computed it.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .simd import element_ptr


def _compiles_for_avx512() -> bool:
    """True when Numba compiles for a CPU with AVX-512: the tile's 16 accumulators of 16 float32 then fit the 32
    vector registers; with AVX2 or NEON they would spill, and OpenBLAS multiplies instead."""
    import llvmlite.binding as ll
    import numba

    if numba.config.CPU_NAME and numba.config.CPU_NAME != "host":
        return "+avx512f" in (numba.config.CPU_FEATURES or "")
    return bool(ll.get_host_cpu_features().get("avx512f", False))


USE = _compiles_for_avx512()   # whether the dense convs (conv_tiled.py) and training's products use the tile
MR, NR = 8, 32          # the register tile: rows x columns
KC = 256                # K per packed block: an A panel (8 x 256) and a B panel (256 x 32) in L1 together
NC = 1024               # columns of B packed at once (1 MiB at K = 256: L2)
_F32 = ir.FloatType()
_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


def _fma_chains(builder, K, load_a, load_b, per_k=lambda k: None):
    """Emit the register tile's loop: sums[r][v] = the chain of fused multiply-adds from zero, in increasing k < K,
    of load_a(k, r, p) (a float32, broadcast) times load_b(k)[v] (vectors of 16 float32), p = per_k(k) (what the
    rows of one k share); zeros when K <= 0."""
    vec = ir.VectorType(_F32, 16)
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fma.v16f32")
    nv = NR // 16
    zero = ir.Constant(vec, [0.0] * 16)
    splat = ir.Constant(ir.VectorType(_I32, 16), [0] * 16)
    entry = builder.block
    loop = builder.append_basic_block("tile.k")
    done = builder.append_basic_block("tile.done")
    builder.cbranch(builder.icmp_signed(">", K, ir.Constant(_I64, 0)), loop, done)
    builder.position_at_end(loop)
    k = builder.phi(_I64)
    k.add_incoming(ir.Constant(_I64, 0), entry)
    acc = [[builder.phi(vec) for _ in range(nv)] for _ in range(MR)]
    for row in acc:
        for p in row:
            p.add_incoming(zero, entry)
    shared = per_k(k)
    bv = load_b(k)
    new = []
    for r in range(MR):
        av = builder.insert_element(ir.Constant(vec, ir.Undefined), load_a(k, r, shared), ir.Constant(_I32, 0))
        av = builder.shuffle_vector(av, av, splat)
        new.append([builder.call(fma, [av, bv[v], acc[r][v]]) for v in range(nv)])
    k1 = builder.add(k, ir.Constant(_I64, 1))
    last = builder.block
    k.add_incoming(k1, last)
    for r in range(MR):
        for v in range(nv):
            acc[r][v].add_incoming(new[r][v], last)
    builder.cbranch(builder.icmp_signed("<", k1, K), loop, done)
    builder.position_at_end(done)
    sums = [[builder.phi(vec) for _ in range(nv)] for _ in range(MR)]
    for r in range(MR):
        for v in range(nv):
            sums[r][v].add_incoming(zero, entry)
            sums[r][v].add_incoming(new[r][v], last)
    return sums


def _store_tile(context, builder, cpty, cp, c0, ldc, add, sums):
    """cp[c0 + r * ldc + 16 v: +16] = sums[r][v], or += when ``add`` (an i64) is nonzero."""
    vec = sums[0][0].type
    ptrs = [[element_ptr(context, builder, cpty, cp, builder.add(c0, builder.add(
        builder.mul(ldc, ir.Constant(_I64, r)), ir.Constant(_I64, 16 * v))), vec) for v in range(len(row))]
        for r, row in enumerate(sums)]
    with builder.if_else(builder.icmp_signed("!=", add, ir.Constant(_I64, 0))) as (then, otherwise):
        with then:
            for row, prow in zip(sums, ptrs):
                for s, ptr in zip(row, prow):
                    builder.store(builder.fadd(builder.load(ptr, align=4), s), ptr, align=4)
        with otherwise:
            for row, prow in zip(sums, ptrs):
                for s, ptr in zip(row, prow):
                    builder.store(s, ptr, align=4)


def _load_panel_row(context, builder, bpty, bp, b0, k):
    """The 32 floats of row k of a packed B panel starting at bp[b0], as two vectors of 16."""
    vec = ir.VectorType(_F32, 16)
    off = builder.add(b0, builder.mul(k, ir.Constant(_I64, NR)))
    return [builder.load(element_ptr(context, builder, bpty, bp, builder.add(off, ir.Constant(_I64, 16 * v)), vec),
                         align=4) for v in range(NR // 16)]


def _is_f32_vector(*arrays):
    return all(isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1 for a in arrays)


@intrinsic
def _tile(typingctx, ap, a0, bp, b0, cp, c0, ldc, K, add):
    """cp[c0 + r * ldc + j] (+)= sum over k < K of ap[a0 + k * 8 + r] * bp[b0 + k * 32 + j], r < 8, j < 32: the
    sum a chain of fused multiply-adds from zero in increasing k, added to c when ``add`` is nonzero, else
    stored. The caller keeps every index in range."""
    if not _is_f32_vector(ap, bp, cp):
        return None
    sig = types.void(ap, types.int64, bp, types.int64, cp, types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ap_, a0_, bp_, b0_, cp_, c0_, ldc_, K_, add_ = args
        apty, bpty, cpty = signature.args[0], signature.args[2], signature.args[4]

        def load_a(k, r, _):
            i = builder.add(builder.add(a0_, builder.mul(k, ir.Constant(_I64, MR))), ir.Constant(_I64, r))
            return builder.load(element_ptr(context, builder, apty, ap_, i, _F32), align=4)

        sums = _fma_chains(builder, K_, load_a, lambda k: _load_panel_row(context, builder, bpty, bp_, b0_, k))
        _store_tile(context, builder, cpty, cp_, c0_, ldc_, add_, sums)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def gather_tile(typingctx, xp, bases, t0, offs, k0, K, bp, b0, cp, c0, ldc, add):
    """cp[c0 + r * ldc + j] (+)= sum over k < K of xp[bases[t0 + r] + offs[k0 + k]] * bp[b0 + k * 32 + j],
    r < 8, j < 32: the register tile of ``_tile`` with its 8 rows read in place, row r of A at its own base and
    column k at an offset common to the rows (a convolution's 8 output pixels and its (channel, tap) table:
    kernels/conv_tiled.py), so that nothing is copied into a packed panel. Same order of the sum as ``_tile``."""
    if not _is_f32_vector(xp, bp, cp):
        return None
    for a in (bases, offs):
        if not (isinstance(a, types.Array) and a.dtype == types.int64 and a.ndim == 1):
            return None
    i64 = types.int64
    sig = types.void(xp, bases, i64, offs, i64, i64, bp, i64, cp, i64, i64, i64)

    def codegen(context, builder, signature, args):
        xp_, bases_, t0_, offs_, k0_, K_, bp_, b0_, cp_, c0_, ldc_, add_ = args
        xty, basety, offty, bpty, cpty = (signature.args[i] for i in (0, 1, 3, 6, 8))
        row_base = [builder.load(element_ptr(context, builder, basety, bases_,
                                             builder.add(t0_, ir.Constant(_I64, r)), _I64)) for r in range(MR)]
        def offset(k):          # column k's offset, common to the 8 rows
            return builder.load(element_ptr(context, builder, offty, offs_, builder.add(k0_, k), _I64))

        def load_a(k, r, off):
            return builder.load(element_ptr(context, builder, xty, xp_, builder.add(row_base[r], off), _F32), align=4)

        sums = _fma_chains(builder, K_, load_a, lambda k: _load_panel_row(context, builder, bpty, bp_, b0_, k),
                           offset)
        _store_tile(context, builder, cpty, cp_, c0_, ldc_, add_, sums)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, fastmath=False, nogil=True)
def _pack_a(a, K, M, p0, kc, ap):
    """ap[(i // 8) * kc * 8 + k * 8 + i % 8] = a[i, p0 + k] for the rows of A, zero past the last row."""
    mt = (M + MR - 1) // MR
    for t in range(mt):
        base = t * kc * MR
        for r in range(MR):
            i = t * MR + r
            if i < M:
                src = a[i * K + p0:i * K + p0 + kc]
                for k in range(kc):
                    ap[base + k * MR + r] = src[k]
            else:
                for k in range(kc):
                    ap[base + k * MR + r] = 0.0


@njit(cache=True, fastmath=False, nogil=True)
def _pack_b(b, N, j0, nc, p0, kc, bp):
    """bp[(j // 32) * kc * 32 + k * 32 + j % 32] = b[p0 + k, j0 + j], zero past the last column."""
    nt = (nc + NR - 1) // NR
    for t in range(nt):
        base = t * kc * NR
        w = min(NR, nc - t * NR)
        for k in range(kc):
            src = b[(p0 + k) * N + j0 + t * NR:(p0 + k) * N + j0 + t * NR + w]
            dst = bp[base + k * NR:base + k * NR + NR]
            for j in range(w):
                dst[j] = src[j]
            for j in range(w, NR):
                dst[j] = 0.0


@njit(cache=True, fastmath=False, nogil=True)
def gemm(M, N, K, a, b, beta, c):
    """c[M, N] = a[M, K] @ b[K, N], plus c when beta is 1 (flat or 2-D C-contiguous float32; see the module)."""
    af = a.reshape(a.size)
    bf = b.reshape(b.size)
    cf = c.reshape(c.size)
    if K == 0:
        if beta == 0:
            cf[:M * N] = 0.0
        return
    mt = (M + MR - 1) // MR
    ap = np.empty(mt * MR * min(K, KC), np.float32)
    bp = np.empty(((min(N, NC) + NR - 1) // NR) * NR * min(K, KC), np.float32)
    tmp = np.empty(MR * NR, np.float32)
    for j0 in range(0, N, NC):
        nc = min(NC, N - j0)
        nt = (nc + NR - 1) // NR
        for p0 in range(0, K, KC):
            kc = min(KC, K - p0)
            add = 1 if (p0 > 0 or beta != 0) else 0
            _pack_b(bf, N, j0, nc, p0, kc, bp)
            _pack_a(af, K, M, p0, kc, ap)
            for ti in range(mt):
                rows = min(MR, M - ti * MR)
                for tj in range(nt):
                    cols = min(NR, nc - tj * NR)
                    c0 = ti * MR * N + j0 + tj * NR
                    if rows == MR and cols == NR:
                        _tile(ap, ti * kc * MR, bp, tj * kc * NR, cf, c0, N, kc, add)
                        continue
                    _tile(ap, ti * kc * MR, bp, tj * kc * NR, tmp, 0, NR, kc, 0)
                    for r in range(rows):
                        d = cf[c0 + r * N:c0 + r * N + cols]
                        s = tmp[r * NR:r * NR + cols]
                        if add:
                            for j in range(cols):
                                d[j] = d[j] + s[j]
                        else:
                            for j in range(cols):
                                d[j] = s[j]
