"""One writer per output directory: a second job stops at once; a killed holder's lock is taken."""

import os
import signal
import subprocess
import sys

import pytest

from di_nas.errors import UserError
from di_nas.io import LOCK_FILE, OutputLock

HOLD = ("import sys, time; from di_nas.io import OutputLock; "
        "OutputLock(sys.argv[1], 'di-nas-search').acquire(); print('held', flush=True); "
        "time.sleep(120)")


@pytest.fixture
def holder(tmp_path, repo_root):
    """A separate process that holds the lock of ``tmp_path / 'out'``; yields the process."""
    env = dict(os.environ, PYTHONPATH=repo_root)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "out")], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_second_writer_is_refused_naming_the_holder(tmp_path, holder):
    with pytest.raises(UserError) as info:
        OutputLock(str(tmp_path / "out")).acquire()
    message = str(info.value)
    assert f"pid {holder.pid}" in message and "di-nas-search" in message and "\n" not in message


def test_lock_of_a_killed_process_is_taken_over(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with OutputLock(str(tmp_path / "out"), "di-nas-train"):
        text = (tmp_path / "out" / LOCK_FILE).read_text()
        assert f"pid {os.getpid()}" in text and "di-nas-train" in text
    with OutputLock(str(tmp_path / "out")):  # released on exit: taken again at once
        pass


def test_a_search_on_a_held_directory_stops_with_one_line(tmp_path, holder, capsys):
    from di_nas.cli import main

    with pytest.raises(SystemExit) as info:
        main.run_app("search", "di_nas.training.search", "run_search",
                     argv=["di-nas-search", f"--output_dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("di-nas-search: error: --output_dir=") and f"pid {holder.pid}" in err
    assert sorted(os.listdir(tmp_path / "out")) == [LOCK_FILE]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
