"""Vector operations Numba's loops do not vectorise by themselves, written as LLVM IR (Numba intrinsics).

- ``nonzero_mask32(bits, k)``: which of the 32 float32 values at bits[k:k + 32] (their bit patterns, uint32)
  are nonzero, as the bits of a uint32 (bit q set: entry k + q is nonzero; -0.0 counts as zero). One vector
  compare and a mask move, where a loop that ORs shifted flags runs one element at a time. Finding the
  events of a sparse input is then a test per 32 inputs and a bit scan per event, with no mispredicted
  branch per element.
- ``transpose8_add_clear(src, s0, ss, dst, d0, ds, b, b0)``: dst[d0 + k * ds + r] = src[s0 + r * ss + k] + b[b0 + k]
  for an 8 x 8 block (r, k < 8), then src's block = 0: eight vector loads, the shuffles of a register
  transpose, eight vector stores and eight of zeros (a scalar transpose is about one element a cycle; the
  zeros leave a scratch accumulator ready for its next use without another pass). Each sum is one float32
  addition, as in a scalar loop, so results are bit-identical.
- ``transpose8(src, s0, ss, dst, d0, ds)``: the same transpose as a plain copy (training's channels-last copy
  of an output gradient).

All are target-independent LLVM (vector loads, shufflevector, icmp, bitcast); LLVM lowers them to the
machine's vector instructions (AVX2/AVX-512 masks and shuffles on x86, NEON elsewhere). The caller keeps the
indices in range: no bounds checks.
"""
import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


def element_ptr(context, builder, aryty, ary, index, vec):
    """Pointer to element ``index`` of a 1-D array, cast to a pointer to the (vector) type ``vec``."""
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [index]), vec.as_pointer())


@intrinsic
def nonzero_mask32(typingctx, bits, k):
    if not (isinstance(bits, types.Array) and bits.dtype == types.uint32 and bits.ndim == 1):
        return None
    sig = types.uint32(bits, types.int64)

    def codegen(context, builder, signature, args):
        vec = ir.VectorType(_I32, 32)
        v = builder.load(element_ptr(context, builder, signature.args[0], args[0], args[1], vec), align=4)
        # shift the sign bit out: +0.0 and -0.0 both become 0
        shifted = builder.shl(v, ir.Constant(vec, [1] * 32))
        nz = builder.icmp_unsigned("!=", shifted, ir.Constant(vec, [0] * 32))
        return builder.bitcast(nz, _I32)

    return sig, codegen


@njit(cache=True, fastmath=False, inline="always")
def nonzero_mask(x, bits, k, end):
    """The nonzeros among x[k:min(k + 32, end)] as the bits of a uint32 (bit q: entry k + q), ``bits`` being x's
    float32 bit patterns (x.view(np.uint32)): one vector test for a whole block, a loop for the last, partial one
    (-0.0 counts as zero either way)."""
    if k + 32 <= end:
        return nonzero_mask32(bits, k)
    m = np.uint32(0)
    for q in range(k, end):
        if x[q] != 0.0:
            m |= np.uint32(1) << np.uint32(q - k)
    return m


def _shuffle(builder, a, b, mask):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, len(mask)), mask))


def _transpose_masks(n):
    """Shuffle masks of an n x n register transpose: for h = n/2, n/4, .., 1, rows r and r + h (bit h of r
    clear) swap the off-diagonal h x h blocks of every 2h x 2h block; after all stages row k holds column k.
    Each new row takes entries of two old rows: (r, partner, mask for r's new row, mask for the partner's)."""
    stages = []
    h = n // 2
    while h >= 1:
        stage = []
        for r in range(n):
            if r & h:
                continue
            keep = [col if (col // h) % 2 == 0 else n + col - h for col in range(n)]
            swap = [col + h if (col // h) % 2 == 0 else n + col for col in range(n)]
            stage.append((r, r + h, keep, swap))
        stages.append(stage)
        h //= 2
    return stages


def _transposed(builder, rows, n):
    """The n x n register transpose of n vectors (row k of the result: column k)."""
    for stage in _transpose_masks(n):
        new = list(rows)
        for r, p, keep, swap in stage:
            new[r] = _shuffle(builder, rows[r], rows[p], keep)
            new[p] = _shuffle(builder, rows[r], rows[p], swap)
        rows = new
    return rows


@intrinsic
def transpose8(typingctx, src, s0, ss, dst, d0, ds):
    """dst[d0 + k * ds + r] = src[s0 + r * ss + k] for an 8 x 8 block (r, k < 8): a copy, transposed."""
    for a in (src, dst):
        if not (isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1):
            return None
    sig = types.void(src, types.int64, types.int64, dst, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        src_, s0_, ss_, dst_, d0_, ds_ = args
        vec = ir.VectorType(_F32, 8)
        rows = [builder.load(element_ptr(context, builder, signature.args[0], src_,
                                         builder.add(s0_, builder.mul(ss_, ir.Constant(_I64, r))), vec), align=4)
                for r in range(8)]
        for k, row in enumerate(_transposed(builder, rows, 8)):
            builder.store(row, element_ptr(context, builder, signature.args[3], dst_,
                                           builder.add(d0_, builder.mul(ds_, ir.Constant(_I64, k))), vec), align=4)
        return context.get_dummy_value()

    return sig, codegen


def _make_transpose_add(n, clear):
    @intrinsic
    def transpose_add(typingctx, src, s0, ss, dst, d0, ds, b, b0):
        for a in (src, dst, b):
            if not (isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1):
                return None
        sig = types.void(src, types.int64, types.int64, dst, types.int64, types.int64, b, types.int64)

        def codegen(context, builder, signature, args):
            src, s0, ss, dst, d0, ds, b, b0 = args
            srcty, dstty, bty = signature.args[0], signature.args[3], signature.args[6]
            vec = ir.VectorType(_F32, n)
            ptrs = [element_ptr(context, builder, srcty, src, builder.add(s0, builder.mul(ss, ir.Constant(_I64, r))),
                                vec) for r in range(n)]
            rows = [builder.load(ptr, align=4) for ptr in ptrs]
            for ptr in ptrs if clear else ():
                builder.store(ir.Constant(vec, [0.0] * n), ptr, align=4)
            rows = _transposed(builder, rows, n)
            bias = builder.load(element_ptr(context, builder, bty, b, b0, vec), align=4)
            for k in range(n):
                bk = _shuffle(builder, bias, bias, [k] * n)          # b[b0 + k] in every lane
                ptr = element_ptr(context, builder, dstty, dst,
                                  builder.add(d0, builder.mul(ds, ir.Constant(_I64, k))), vec)
                builder.store(builder.fadd(rows[k], bk), ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return transpose_add


# dst[d0 + k * ds + r] = src[s0 + r * ss + k] + b[b0 + k] for an 8 x 8 block (r, k < 8); the _clear variant
# also zeroes the source block. 8 x 8 (AVX2 registers): a 16 x 16 transpose was no faster, the output's stores
# bound it.
transpose8_add_clear = _make_transpose_add(8, clear=True)
transpose8_add = _make_transpose_add(8, clear=False)
