"""`di-nas-train`: train the derived architecture from scratch.

Thin entry point: parses flags, builds the config and calls
`di_nas.training.final.run_final_training(cfg)`. No logic lives here and nothing runs at
import time.
"""

from di_nas.cli import main

run = main.main_wrapper("train", "di_nas.training.final", "run_final_training", check_data=True)

if __name__ == "__main__":
    run()
