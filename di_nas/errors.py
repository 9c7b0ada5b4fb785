"""Errors that di-nas reports to the user instead of a traceback.

This module must stay dependency free: entry points import it before anything heavy.
"""


class UserError(ValueError):
    """Bad input from the user (flags, files, datasets, Python API arguments).

    The message is one line that names the problem and says how to fix it; the command-line
    wrapper prints it as ``di-nas-<cmd>: error: <message>`` and exits with status 2.
    """
