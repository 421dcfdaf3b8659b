"""DVC stage entry points: `python -m stages.<name>`, one thin script per stage."""

import os

# One OpenMP thread per Python thread, set before any library loads OpenMP: `_args.run` limits the
# main thread, this covers the threads joblib starts (cross-validation folds). Outputs stay the same
# on every machine, and parallel folds do not oversubscribe the cores.
os.environ["OMP_NUM_THREADS"] = "1"
