"""Write tests/data/shipped_outputs.json: digests of every shipped network's outputs, spikes and trace counts.

    PYTHONPATH=. python scripts/shipped_outputs.py

Run once before a change that must not alter any result (the layer registry refactor); the test
tests/test_shipped_outputs.py recomputes the digests and compares. Regenerate only for an intended change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from shipped_outputs import CASES, REFERENCE, case_id, digests, outputs  # noqa: E402


def main() -> None:
    ref = {case_id(y, w): digests(outputs(y, w)) for y, w in CASES}
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    tmp = REFERENCE.with_suffix(".tmp")
    tmp.write_text(json.dumps(ref, sort_keys=True, separators=(",", ":")) + "\n")
    tmp.replace(REFERENCE)
    print(f"wrote {REFERENCE.relative_to(ROOT)}: {len(ref)} networks, {sum(map(len, ref.values()))} arrays")


if __name__ == "__main__":
    main()
