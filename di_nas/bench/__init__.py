"""`di-nas-bench`: step times, trace counts, oracle cost and projector memory.

May import every library package below `cli/`; nothing imports it but the CLI.
"""

from di_nas.bench.run import run_bench

__all__ = ["run_bench"]
