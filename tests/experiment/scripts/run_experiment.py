"""Run (or resume) one experiment of the tests' model space, as a user's script would.

``python run_experiment.py WORKDIR [--resume] [--max-trials N] [--sleep S]
[--engine NAME] [--concurrency N] [--seed N] [--fault ID=KIND ...]``; prints
``RUN RETURNED`` when ``run()`` returns, and ``RUN FAILED: <error>`` (exit code 1)
when it raises an archsmith error.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _experiment_helpers import make_experiment

from archsmith.space import ArchsmithError

parser = argparse.ArgumentParser()
parser.add_argument("workdir")
parser.add_argument("--resume", action="store_true")
parser.add_argument("--max-trials", type=int, default=12)
parser.add_argument("--sleep", type=float, default=0.4)
parser.add_argument("--engine", default="process")
parser.add_argument("--concurrency", type=int, default=2)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--fault", action="append", default=[], help="TRIAL_ID=raise|nan|hang|exit")
args = parser.parse_args()
faults = {int(k): v for k, v in (f.split("=") for f in args.fault)}

experiment = make_experiment(
    args.workdir,
    sleep=args.sleep,
    max_trials=args.max_trials,
    engine=args.engine,
    concurrency=args.concurrency,
    seed=args.seed,
    faults=faults or None,
)
try:
    experiment.run(resume=args.resume)
except ArchsmithError as e:
    print(f"RUN FAILED: {e}", flush=True)
    sys.exit(1)
print("RUN RETURNED", flush=True)
