"""Training jobs: the search loop, final training of a derived architecture, checkpoints.

Import the modules themselves (``di_nas.training.final``); this package holds no logic.
May import `config`, `errors`, `io`, `distribute`, `data`, `search_space`, `ops`, `supernet`,
`di`, `controller` and `child`; never `studies`, `bench` or `cli`, and reads no flags (it
receives a `Config`).
"""
