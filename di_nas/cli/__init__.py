"""Command-line entry points of di-nas (absl flags -> config -> library call).

Nothing here holds logic; importing this package defines no flags (``di_nas.cli.flags`` does).
The top of the import graph: may import every di_nas package and module; nothing imports it.
"""
