"""What the training kernels share about threads: Numba's pool started on import, the fixed chunk size of
element-wise loops and the work below which a loop runs serially."""

import numba

# Start Numba's thread pool now. Plain dispatchers here call parallel=True helpers; when they are loaded
# from the on-disk cache in a fresh process, nothing else starts the pool and the first call segfaults
# (numba 0.68). get_num_threads() launches the pool as a side effect and is public API. (Inference does not
# need it: its kernels split work with kernels/threads.py.)
numba.get_num_threads()

# Elements per parallel chunk of the element-wise loops (fixed, so results do not depend on threads).
CHUNK = 1 << 14
# Work (elements x steps) below which loops run serially: a parallel region costs ~10-20 us (and much more on
# a loaded machine), which small layers never repay.
PAR_MIN_WORK = 1 << 17
