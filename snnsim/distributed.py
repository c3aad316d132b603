"""Scale out on Dask: shard samples across workers, merge outputs and traces; design-space studies as tasks.

``run_sharded(spec, weights, x, client=...)`` cuts the samples into contiguous shards whose boundaries fall on
batch boundaries, runs each shard with ``snnsim.engine.run`` on a worker, and merges the results in sample
order: outputs are concatenated and trace counts summed (``Trace.merge``, as a single process merges its
batches). Every batch is the same batch a single-process run would compute (same samples, same batch size,
rate-coding seeds by global sample index), and the merged counts are sums of integers, so the result is
identical to ``engine.run`` on all samples (``tests/test_distributed.py``).

``study(...)`` runs networks x T x regimes as Dask tasks, each pricing its trace on every architecture, and
returns one pandas row per (network, T, regime, architecture).

``client(workers=N)`` starts a local ``dask.distributed`` cluster (one single-threaded worker process each);
``client(scheduler=ADDRESS)`` connects to a running one. Dask is an optional extra (``pip install
'snnsim[dask]'``); without it nothing else in snnsim changes.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["client", "run_sharded", "study", "shard_bounds"]


def client(workers: int | None = None, scheduler: str | None = None, processes: bool = True):
    """A ``dask.distributed.Client``: a new local cluster of ``workers`` processes, or ``scheduler``'s."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise InputError("--workers/--scheduler need Dask: pip install 'snnsim[dask]'") from None
    if (workers is None) == (scheduler is None):
        raise InputError("give exactly one of --workers N or --scheduler ADDRESS")
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({e})") from None
    if workers < 1:
        raise InputError(f"--workers: expected a positive integer, got {workers}")
    # one thread per worker: the Numba kernels use the cores, and processes sidestep the GIL
    # the client owns its cluster, so closing the client (a with-block) stops the workers too
    return Client(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=":0")


def shard_bounds(n: int, shards: int, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) sample ranges, each a whole number of batches (the last may be shorter)."""
    batches = -(-n // batch_size)
    per = -(-batches // max(1, min(shards, batches)))
    return [(b * batch_size, min(n, (b + per) * batch_size)) for b in range(0, batches, per)]


def _run_shard(spec, weights, x, first_index, options):
    from .engine import run
    from .network import build_network

    return run(build_network(spec, weights), x, first_index=first_index, **options)


def run_sharded(spec, weights, x, *, client, timesteps=None, batch_size: int = 64, shards: int | None = None,
                **options):
    """``engine.run`` of ``x`` split over ``client``'s workers; the same ``RunResult`` as one process."""
    from .engine import RunResult

    events = spec.encoding.kind == "events"
    n = x.shape[1] if events else len(x)
    if n == 0:
        raise InputError("input: no samples")
    shards = shards or max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    bounds = shard_bounds(n, shards, batch_size)
    spec_f, weights_f = client.scatter([spec, weights], broadcast=True, hash=False)
    futures = [client.submit(_run_shard, spec_f, weights_f, x[:, a:b] if events else x[a:b], a,
                             dict(timesteps=timesteps, batch_size=batch_size, **options), pure=False)
               for a, b in bounds]
    parts = client.gather(futures)
    trace = parts[0].trace
    for p in parts[1:]:
        trace.merge(p.trace)
    outputs = np.concatenate([p.outputs for p in parts], axis=1)
    readout = np.concatenate([p.readout for p in parts], axis=0)
    return RunResult(outputs, readout, trace)


def _study_task(name, spec, weights, x, T, regime, archs, batch_size):
    from hwmodel import load_arch, price

    from .engine import run
    from .network import build_network

    steps = 1 if regime == "oneshot" else T
    trace = run(build_network(spec, weights), x, timesteps=steps, batch_size=batch_size, regime=regime).trace
    rows = []
    for arch in archs:
        tot = price(trace, load_arch(arch)).totals
        rows.append(dict(network=name, T=steps, regime=regime, arch=arch, energy_uj=tot["energy_pj"] / 1e6,
                         latency_us=tot["latency_ns"] / 1e3, synops=tot["synops"], state_bytes=tot["state_bytes"]))
    return rows


def study(networks: dict, x, *, timesteps=(4,), regimes=("multistep", "oneshot"), archs=("evt45",),
          client=None, batch_size: int = 64):
    """Price every network x T x regime on every architecture; one Dask task per (network, T, regime).

    networks: {name: (spec, weights)} (e.g. ``(m.spec, m.weights)`` of ``snnsim.load``); x: the samples
    (``[N, ...]``); client: a ``dask.distributed.Client``, or None to run the same tasks in this process.
    Returns a DataFrame with energy (µJ) and latency (µs) per inference."""
    import pandas as pd

    jobs = []
    for name, (spec, weights) in networks.items():
        for regime in regimes:
            for T in ((1,) if regime == "oneshot" else timesteps):
                jobs.append((name, spec, weights, x, int(T), regime, tuple(archs), batch_size))
    if client is None:
        results = [_study_task(*job) for job in jobs]
    else:
        x_f = client.scatter(x, broadcast=True, hash=False)
        results = client.gather([client.submit(_study_task, *(job[:3] + (x_f,) + job[4:]), pure=False)
                                 for job in jobs])
    return pd.DataFrame([row for rows in results for row in rows])
