"""Command-line entry points of di-nas (absl flags -> config -> library call).

Nothing here holds logic; importing this package defines no flags (``di_nas.cli.flags`` does).
"""
