"""Training in NumPy/Numba: BPTT with surrogate gradients, reversible RevSNN blocks and T-RevSNN
columns, online OTTT/SAF, the IIR timestep schedule; the ``snnsim train`` command (``snnsim.cli.train.train``). See docs/training.md.

    surrogate.py  sigmoid / atan / triangle surrogates (SpikingJelly 2.0's), straight-through for Quant
    grads/        Numba backward kernels: neurons (multi-step, the engine's neuron_step forward), conv, batch norm,
                  pooling
    forward.py    the training graph's shared parts (activations, pass context, node base); each kind's node
                  (its forward with storage and its backward) is in its module of snnsim.layers
    memory.py     bytes held for the backward pass, per layer and at their peak
    step.py       one gradient step (loss, backward, optimiser update) for the methods that store a forward
    bptt.py       backpropagation through time          reversible.py  the reversible backward of invertible blocks
                  (a T-RevSNN network's two methods are its kind's: snnsim.layers.trevsnn.train)
    online.py     OTTT (A/O) and SAF (E/F)                losses.py, optim.py, checkpoint.py, loop.py, cli.py
"""
