"""Reversible training (RevSNN blocks, T-RevSNN columns): needs the reversible execution of issue 4
(``snnsim.reversible``, ``snnsim.trev``). Until those modules exist, ``--method reversible`` stops with a
one-line message."""

from __future__ import annotations

import importlib.util

from ..errors import InputError


def make_reversible(spec, neuron_cfg):
    missing = [m for m in ("snnsim.reversible", "snnsim.trev") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"--method reversible: needs the reversible execution modules ({', '.join(missing)}), "
                         "which are not part of this installation yet; use --method bptt, ottt or saf")
    raise InputError(f"--method reversible: network '{spec.name}' has no reversible blocks to train this way yet")
