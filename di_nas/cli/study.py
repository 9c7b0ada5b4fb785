"""`di-nas-study`: run the performance-disturbance or rank-correlation study.

Thin entry point: parses flags, builds the config and calls
`di_nas.studies.run_study(cfg)`. No logic lives here and nothing runs at
import time.
"""

from di_nas.cli import main

# `di-nas-study pd` and `di-nas-study rank` (or --study=...).
run = main.main_wrapper("study", "di_nas.studies", "run_study", check_data=True,
                        positional="study")

if __name__ == "__main__":
    run()
