"""Studies that check the method's claims on our own runs: performance disturbance (`pd`), rank
correlation (`rank`) and whether the search beats random sampling (`search`).
`run_study(cfg)` is what `di-nas-study` calls; each study module is imported only when it runs.

May import every library package below `cli/` except `bench/`; nothing but the CLI imports it.
"""

from __future__ import annotations

import importlib

from di_nas.errors import UserError

_STUDIES = {"pd": ("di_nas.studies.pd_search", "run_pd"),
            "rank": ("di_nas.studies.rank", "run_rank_study"),
            "search": ("di_nas.studies.search", "run_search_study")}


def run_study(cfg) -> dict:
    """Runs the study `cfg.study.name` on `cfg.data` and returns its result dict."""
    name = cfg.study.name
    if name not in _STUDIES:
        raise UserError(f"study.name={name!r} is not known: use one of {', '.join(_STUDIES)}")
    module, function = _STUDIES[name]
    try:
        job = getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise UserError(f"the {name} study is not available in this version") from None
    from di_nas.data import load_source

    return job(cfg, load_source(cfg.data, seed=cfg.seed))
