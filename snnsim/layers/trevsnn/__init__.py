"""T-RevSNN (Hu et al., ICML 2024): temporal-reversible networks, as the official PyTorch code computes them
(github.com/BICLab/T-RevSNN @ 3b75b37; docs/papers.md, T-RevSNN).

Structure (one ``type: trevsnn`` layer is the whole network; docs/regimes.md has the YAML and the key list):

  x      = stem(img)                 ScaledStdConv2d layers, computed ONCE and shared by all columns
  column t = 0..T-1 (timestep t), each run once; levels l = 0..L-1 in order:
    z_l  = down_l(c_{l-1}[t]) + up_l(c_{l+1}[t-1])      (down_0 = identity on x; no up at t = 0, at l = L-1,
                                                          or with ``fusion: false``)
    c_l[t] = B2_l(B1_l(z_l)) + alpha_l^(t) * c_l[t-1]     (c_l[-1] = 0)
    B1(z) = z + gamma * DW2(PW2(Q(PW1(DW1(Q(z))))))       B2(z) = z + DW2s(PW2s(Q(PW1'(DW1'(Q(z))))))
    down/up = Q -> conv (no bias) -> BN (-> nearest x2 for up)
    heads: after every (T/H)-th column, head k = GAP(c_{L-1}) -> ScaledStdConv 1x1 (k < H-1) or
           Q -> GAP -> ScaledStdConv -> ScaledStdConv (the last, spiking head); eval uses the last head.
  Q = Quant at eval: round(clip(u, 0, 1)), i.e. a spike where u > 0.5; a turned-off neuron with no state.
  alpha^(t) per channel and column, clamped as the official ``SubNet._clamp_abs``: sign(a) * max(|a|, 1e-3)
  (torch.sign(0) = 0, so an alpha of exactly 0 stays 0 and that column is not invertible).
  PW2s/DW2s (``blocks.1.pwconv2_reuse``/``dwconv2_reuse``) are one module per level shared by all columns.

The only state that crosses timesteps is the c_l (one tensor per level); everything else is stateless.
Inverse of a column (docs/papers.md, T-RevSNN inverse; ``snnsim.regimes.invert_column``), l = L-1 .. 0, each step re-running L forward:
    c_l[t-1] = (c_l[t] - L_l(c_{l-1}[t], c_{l+1}[t-1])) / alpha_l

The package: ``records`` (the records, the coupling and its inverse, the column schedule ``columns`` that every
runner shares), ``parse`` (YAML, the sub-layers out of other kinds' records, seeded weights), ``op`` (the inference
op, the engine's ``ColumnSchedule``, one level's run ``run_level`` and the columns' ``run_columns``, which take the
executor they run on), ``bounds`` (the inverse's error bounds and the guard; the regime's runs outside the traced
loop, ``forward``/``invert_column``/``level_forward``, are ``snnsim.regimes.trev``), ``train`` (BPTT over the columns and the reversible backward: the kind's ``trainer``).
"""

from ..registry import Kind, register
from .bounds import guard_mask, quant_risk, recon_bound
from .op import ColumnSchedule, TRevOp, build_op, run_columns, run_level, the_op
from .parse import init_network, parse
from .records import TLevel, TRevSNN, TRevState, clamp_alpha, columns, couple, trev_layer, uncouple
from .train import TRevBPTT, TRevReversible, trainer

STATE = register(Kind("state", (), TRevState))
KIND = register(Kind("trevsnn", ("trevsnn",), TRevSNN, parse, build_op, init_network=init_network, trainer=trainer))

__all__ = ["ColumnSchedule", "TLevel", "TRevBPTT", "TRevOp", "TRevReversible", "TRevSNN", "TRevState", "clamp_alpha",
           "columns", "couple", "guard_mask", "quant_risk", "recon_bound", "run_columns", "run_level", "the_op",
           "trev_layer", "uncouple"]
