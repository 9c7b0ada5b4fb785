"""Every di-nas command-line flag, and the one function that turns flags into a ``Config``.

Flags are flat (``--batch_size``, ``--di_beta``); ``FLAG_TABLE`` (in ``di_nas.api.options``, shared
with the Python API's keyword overrides) maps each one to its config field, and flag defaults
are read from the config dataclasses so the two can never disagree.
Importing this module defines the flags on ``absl.flags.FLAGS`` and does nothing else; library
modules must not define flags or read ``FLAGS``.
"""

from __future__ import annotations

from absl import flags

from di_nas import config as config_lib  # noqa: F401 (kept for callers)
from di_nas.api.options import FLAG_TABLE, FlagSpec, config_from_values, flag_names  # noqa: F401 (re-exported)
from di_nas.api.options import field_default as _field_default


def define_flags(flag_values: flags.FlagValues) -> None:
    """Defines every flag of ``FLAG_TABLE`` on ``flag_values``."""
    for spec in FLAG_TABLE:
        default, type_ = _field_default(spec)
        kw = dict(flag_values=flag_values)
        if spec.choices:
            flags.DEFINE_enum(spec.name, default, spec.choices, spec.help, **kw)
        elif type_ == "bool":
            flags.DEFINE_bool(spec.name, default, spec.help, **kw)
        elif type_ in ("int", "int | None"):
            flags.DEFINE_integer(spec.name, default, spec.help, **kw)
        elif type_ == "float":
            flags.DEFINE_float(spec.name, default, spec.help, **kw)
        else:  # str or str | None
            flags.DEFINE_string(spec.name, default, spec.help, **kw)


def new_flag_values() -> flags.FlagValues:
    """A fresh ``FlagValues`` with every di-nas flag defined (for tests and tools)."""
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    return flag_values


def build_config(flag_values: flags.FlagValues | None = None) -> config_lib.Config:
    """Builds the validated ``Config`` from parsed flags (default: ``absl.flags.FLAGS``).

    Raises:
        UserError: a value is out of range or not a known choice.
    """
    flag_values = FLAGS if flag_values is None else flag_values
    return config_from_values({spec.name: flag_values[spec.name].value for spec in FLAG_TABLE})


_flag_names = flag_names


FLAGS = flags.FLAGS
define_flags(FLAGS)
