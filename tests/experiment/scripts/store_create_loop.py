"""Create stores one after another, forever, in ROOT/0, ROOT/1, ...: a test kills this
process (SIGKILL) at a random moment to check a creation is all or nothing.

``python store_create_loop.py ROOT``; prints ``READY`` once imported.
"""

import sys
from pathlib import Path

from archsmith.experiment import Store

root = Path(sys.argv[1])
meta = {f"key{i}": "x" * 1000 for i in range(200)}  # ~200 kB: a creation takes a while
print("READY", flush=True)
i = 0
while True:
    Store.create(root / str(i) / "experiment.db", meta).close()
    i += 1
