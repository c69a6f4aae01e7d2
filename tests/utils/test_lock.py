import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sigmab.errors import ConfigError
from sigmab.utils.lock import folder_lock, lock_path


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with folder_lock(run):
        assert lock_path(run).read_text().strip() == str(os.getpid())
        with pytest.raises(ConfigError, match=rf"another sigmab command is writing the run folder .*run "
                                              rf"\(process {os.getpid()}\)"):
            with folder_lock(run):
                pass
        with folder_lock(tmp_path / "other"):  # another folder is another lock
            pass
    assert not lock_path(run).exists()  # released and removed
    with folder_lock(run):  # free again
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = ("import sys, time\nfrom sigmab.utils.lock import folder_lock\n"
            f"with folder_lock({str(run)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=f"process {holder.pid}"):
            with folder_lock(run):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(run).exists()  # the dead holder's file stays, but its lock died with it
    with folder_lock(run):
        pass


def test_secondary_torchrun_ranks_do_not_take_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    with folder_lock(run):
        monkeypatch.setenv("RANK", "1")
        with folder_lock(run):  # rank 0 holds it for every rank
            pass


def test_an_unwritable_parent_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot write the run folder"):
        with folder_lock(tmp_path / "file" / "run"):
            pass
