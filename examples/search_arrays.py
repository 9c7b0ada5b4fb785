"""Search an architecture on NumPy arrays, train it and export it, from Python.

The arrays are validated as an npz file would be and named by their content in the search's
config, so ``di-nas-search --flagfile=<output_dir>/search.flags`` resumes this search from the
command line (and ``di_nas.search`` resumes a command-line search).

    python examples/search_arrays.py [--output_dir=runs/arrays] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import di_nas  # noqa: E402

# The small nb201 space (one cell per stage): its supernet traces in seconds, where
# enas_micro's takes a minute or more on a slow CPU.
TINY = dict(space="nb201", num_cells=1, batch_size=16, eval_batch_size=32, shuffle_buffer=256,
            num_layers=1, filters=4, stem_multiplier=1, controller_lstm_units=8,
            controller_steps_per_epoch=2, controller_aggregate=1, epochs=1, steps_per_epoch=2,
            num_candidates=3, final_epochs=1, final_batch_size=16, final_layers=1, final_filters=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="runs/arrays")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args()
    digits = load_digits()
    x = np.round(digits.images * 255 / 16).astype(np.uint8)  # (N, 8, 8) pixels in 0..255
    y = digits.target
    options = TINY if args.tiny else dict(epochs=3, final_epochs=5)
    if args.tiny:
        x, y = x[:200], y[:200]
    result = di_nas.search((x, y), output_dir=os.path.join(args.output_dir, "search"),
                           **options)
    print(result.summary(top=3))
    trained = di_nas.train(result, (x, y), output_dir=os.path.join(args.output_dir, "final"),
                           **options)
    saved = di_nas.export(trained.output_dir)
    print(json.dumps({"test_accuracy": round(trained.test_accuracy, 4), "saved_model": saved}))


if __name__ == "__main__":
    main()
