"""Typed, frozen configuration of every di-nas job.

One ``Config`` value describes a job; it is built from flags in exactly one place
(``di_nas.cli.flags.build_config``) or from the ``tiny()`` preset in tests. The defaults ARE the
digits search preset (``flags/digits_search.cfg`` restates them; a test checks they agree).

Every section validates itself in ``__post_init__`` and raises ``UserError`` with a one-line
message. This package must not import TensorFlow, define flags or touch the file system.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from di_nas.config.checks import (  # noqa: F401  (re-exported: the choices flags offer)
    CONTROLLERS,
    DI_INPUTS,
    DI_PROJECT,
    DI_SCOPES,
    OFFPATH_MOMENTUM,
    PD_PROTOCOLS,
    PRECISIONS,
    SPACES,
    STRATEGIES,
    STUDIES,
    check,
    non_negative,
)
from di_nas.config.jobs import (  # noqa: F401  (CHILD_STEPS re-exported)
    CHILD_STEPS,
    BenchConfig,
    DistributeConfig,
    ExportConfig,
    FinalConfig,
    StudyConfig,
)
from di_nas.config.sections import (
    ControllerConfig,
    DataConfig,
    DIConfig,
    OptimConfig,
    SearchConfig,
    SpaceConfig,
)

_FINGERPRINT_SECTIONS = {
    "data": ("data_dir", "download", "eval_batch_size"),
    "space": (),
    "optim": (),
    "di": (),
    "controller": (),
    "search": ("log_every",),
}


@dataclass(frozen=True)
class Config:
    """Everything one di-nas job needs."""

    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    di: DIConfig = field(default_factory=DIConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    distribute: DistributeConfig = field(default_factory=DistributeConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    output_dir: str = "runs/digits_search"
    seed: int = 0

    def __post_init__(self):
        check(bool(self.output_dir), "output_dir is empty: pass --output_dir=DIR")
        non_negative("", seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable nested dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Inverse of ``to_dict``; unknown keys raise ``UserError``."""
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            if isinstance(value, dict):
                section_cls = type(f.default_factory())
                names = {sf.name for sf in dataclasses.fields(section_cls)}
                unknown = sorted(set(value) - names)
                check(not unknown, f"unknown config field(s) {f.name}.{unknown}")
                value = section_cls(**value)
            kwargs[f.name] = value
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        check(not unknown, f"unknown config section(s) {unknown}")
        return cls(**kwargs)

    def replace(self, **sections: Any) -> Config:
        """A copy with some fields changed: ``cfg.replace(data={'batch_size': 8}, seed=1)``."""
        kwargs = {}
        for name, value in sections.items():
            if isinstance(value, dict):
                value = dataclasses.replace(getattr(self, name), **value)
            kwargs[name] = value
        return dataclasses.replace(self, **kwargs)

    def search_dict(self) -> dict[str, Any]:
        """The fields that define a search (what ``fingerprint`` hashes)."""
        out: dict[str, Any] = {"seed": self.seed}
        for section, ignored in _FINGERPRINT_SECTIONS.items():
            values = dataclasses.asdict(getattr(self, section))
            out[section] = {k: v for k, v in values.items() if k not in ignored}
        return out

    def fingerprint(self) -> str:
        """A stable 16-hex-digit hash of ``search_dict()``.

        Used to refuse resuming an ``output_dir`` that a different search configuration wrote.
        """
        text = json.dumps(self.search_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def tiny(output_dir: str = "runs/tiny", seed: int = 0) -> Config:
    """A configuration small enough for unit tests on one CPU core (seconds, not minutes)."""
    return Config(
        data=DataConfig(batch_size=16, eval_batch_size=32, shuffle_buffer=256),
        space=SpaceConfig(num_layers=1, filters=4, stem_multiplier=1, num_cells=1),
        controller=ControllerConfig(lstm_units=8, steps_per_epoch=2, aggregate=1),
        search=SearchConfig(epochs=1, steps_per_epoch=2, num_candidates=3, log_every=1),
        final=FinalConfig(epochs=1, batch_size=16, num_layers=1, filters=4),
        study=StudyConfig(pairs=2, steps=2, warmup_steps=2, archs=3, child_steps=2, seeds=1,
                          supernet_steps=4),
        bench=BenchConfig(quick=True),
        output_dir=output_dir,
        seed=seed,
    )
