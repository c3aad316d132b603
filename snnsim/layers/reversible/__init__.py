"""RevSNN reversible blocks (YAML reversible; Zhang & Zhang, AAAI 2024; docs/papers.md, RevSNN) over channel
halves, per timestep t in the engine's time loop (F and G keep their neuron state across timesteps):

    x = [x1, x2]      y1 = x1 + F(x2)      y2 = x2 + G(y1)      y = [y1, y2]

with ``f`` and ``g`` layer lists. Children are named ``<name>.f_block.<child>`` and ``<name>.g_block.<child>``
(revtorch's attribute names; ``f_prefix``/``g_prefix`` change them). The coupling and its inverse are written once
(``block``) and used by the inference op (``op``), the bounded inverse (``snnsim.regimes.invert_block``) and the reversible backward
(``node``, whose ``invert_backward`` the reversible training method calls for every ``invertible`` kind).
"""

from ..registry import Kind, register
from .block import Reversible, couple, parse, split, uncouple
from .node import ReversibleNode, train_node
from .op import ReversibleOp, build_op, reversible_ops

KIND = register(Kind("reversible", ("reversible",), Reversible, parse, build_op, train_node=train_node,
                     invertible=True))

__all__ = ["Reversible", "ReversibleNode", "ReversibleOp", "couple", "reversible_ops", "split", "uncouple"]
