"""`di-nas-export`: export a trained child network as a SavedModel (and TFLite).

Thin entry point: parses flags, builds the config and calls
`di_nas.export.run_export(cfg)`. No logic lives here and nothing runs at
import time.
"""

from di_nas.cli import main

run = main.main_wrapper("export", "di_nas.export", "run_export", check_data=False)

if __name__ == "__main__":
    run()
