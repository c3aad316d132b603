#!/usr/bin/env bash
# Install snnsim with everything its tests need, then run the whole test suite.
# SpikingJelly 2.0.0 is installed with --no-deps: its declared torchvision/torchaudio requirements would
# replace the pinned CPU torch with a multi-GB CUDA build, and its simulator core needs neither. Norse (a
# reference for snnsim.torch_import) likewise: everything it imports is installed by the reference extra.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check --no-deps "spikingjelly==2.0.0" "norse==1.1.0"
python -m pip install --quiet --disable-pip-version-check -e ".[test,reference,data,events,dask]"
# Random test order (pytest-random-order; the seed is printed, rerun one order with --random-order-seed=N):
# every test must pass whatever ran before it.
python -m pytest -q --random-order "$@"
