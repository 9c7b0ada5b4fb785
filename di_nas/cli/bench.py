"""`di-nas-bench`: time the supernet and projector steps.

Thin entry point: parses flags, builds the config and calls
`di_nas.bench.run_bench(cfg)`. No logic lives here and nothing runs at
import time.
"""

from di_nas.cli import main

run = main.main_wrapper("bench", "di_nas.bench", "run_bench", check_data=False)

if __name__ == "__main__":
    run()
