"""The shared wrapper of every di-nas entry point: flags -> config -> library job.

``run_app`` parses ``argv`` with absl (``--flagfile`` allowed), builds the ``Config``, checks
the dataset cheaply, imports the library module lazily and runs the job. Bad input (flag
errors, ``UserError``) ends with ONE line ``di-nas-<cmd>: error: <message>`` on stderr and exit
status 2, never a traceback; Ctrl-C ends with one line and status 130.

This module holds no training logic and must not import TensorFlow at import time.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from absl import flags

from di_nas.errors import UserError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _say(prog: str, message: str) -> None:
    print(f"{prog}: {_one_line(message)}", file=sys.stderr, flush=True)


def _flag_error_message(error: flags.Error, argv: Sequence[str]) -> str:
    message = str(error).replace("ERROR:: ", "")
    if isinstance(error, flags.UnrecognizedFlagError):
        name = error.flagname
        on_command_line = any(a.lstrip("-").split("=")[0] in (name, "no" + name)
                              for a in argv[1:])
        flagfiles = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--flagfile=")]
        if not on_command_line and flagfiles:
            message += f" (read from --flagfile={','.join(flagfiles)})"
        message += ": run with --help to list the flags"
    return message


def _wants_help(argv: Sequence[str]) -> bool:
    return any(a in ("-h", "--help", "--helpfull", "-?") for a in argv[1:])


def _import_job(module: str, function: str):
    """Returns ``module.function``, or None when that di_nas module does not exist yet."""
    try:
        return getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as e:
        # Only "this di-nas module is missing"; a missing third-party dependency inside it is
        # a real error and propagates.
        if e.name == module or module.startswith(f"{e.name}."):
            return None
        raise


def run_app(cmd: str, module: str, function: str, *, check_data: bool = True,
            argv: Sequence[str] | None = None, positional: str | None = None) -> NoReturn:
    """Runs one di-nas command and exits.

    Args:
        cmd: the command name; messages are prefixed with ``di-nas-<cmd>``.
        module: the library module holding the job, imported only when the job runs.
        function: the job, called as ``function(cfg)``.
        check_data: check that ``--dataset`` names a usable dataset before the job starts.
        argv: the command line (default ``sys.argv``).
        positional: a flag that one bare argument sets (``di-nas-study pd`` means
            ``--study=pd``).
    """
    prog = f"di-nas-{cmd}"
    argv = list(sys.argv if argv is None else argv)
    # Keep TensorFlow's C++ start-up chatter out of the user's terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from di_nas.cli import flags as di_flags  # defines the flags

    if _wants_help(argv):
        try:
            print(f"usage: {prog} [--flagfile=FILE] [--flag=value ...]\n")
            print(di_flags.FLAGS.module_help(di_flags))
        except BrokenPipeError:  # `di-nas-search --help | head`
            pass
        sys.exit(0)
    try:
        di_flags.FLAGS.unparse_flags()  # a second run in one process starts from defaults
        try:
            remaining = di_flags.FLAGS(argv)
        except flags.Error as e:
            raise UserError(_flag_error_message(e, argv)) from None
        if positional and len(remaining) == 2:
            try:
                di_flags.FLAGS[positional].parse(remaining.pop())
            except flags.Error as e:
                raise UserError(str(e)) from None
        if len(remaining) > 1:
            raise UserError(f"unexpected argument(s) {' '.join(remaining[1:])}: flags are "
                            "written --name=value")
        cfg = di_flags.build_config(di_flags.FLAGS)
        if check_data:
            from di_nas.data import checks  # no TensorFlow: a bad name fails fast

            checks.check_source(cfg.data)
        _import_tensorflow_quietly()
        job = _import_job(module, function)
        if job is None:
            _say(prog, "not yet available in this version")
            sys.exit(EXIT_USAGE)
        job(cfg)
    except UserError as e:
        _say(prog, f"error: {e}")
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt as e:
        _say(prog, f"interrupted: {e}" if str(e) else "interrupted")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(0)


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow and Keras with file descriptor 2 closed for the duration.

    TensorFlow's C++ start-up lines (oneDNN, CPU features) go straight to fd 2, ignoring
    TF_CPP_MIN_LOG_LEVEL; they would bury the one-line errors users rely on. An import error
    still surfaces as a Python exception once stderr is back.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401  (No op runs here: a multi-worker strategy must be
        # created before the first one.)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main_wrapper(cmd: str, module: str, function: str, *, check_data: bool = True,
                 positional: str | None = None):
    """Returns a zero-argument ``run()`` for a console script (see ``run_app``)."""

    def run() -> NoReturn:
        run_app(cmd, module, function, check_data=check_data, positional=positional)

    run.__doc__ = f"Entry point of di-nas-{cmd}: runs {module}.{function}(cfg)."
    return run
