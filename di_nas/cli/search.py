"""`di-nas-search`: search an architecture with disturbance-immune weight sharing.

Thin entry point: parses flags, builds the config and calls
`di_nas.training.search.run_search(cfg)`. No logic lives here and nothing runs at
import time.
"""

from di_nas.cli import main

run = main.main_wrapper("search", "di_nas.training.search", "run_search", check_data=True)

if __name__ == "__main__":
    run()
