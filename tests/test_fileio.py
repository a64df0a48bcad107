"""Atomic writes keep the umask's mode (or the file's own), and a failed write names the file."""
import errno
import os
import stat

import pytest

from minitorchnn.fileio import WriteError, staged, write_atomic


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_mode_the_umask_gives(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.json") == expected


def test_a_rewritten_file_keeps_its_mode(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("{}")
    path.chmod(0o640)
    write_atomic(path, "[]")
    assert mode(path) == 0o640 and path.read_text() == "[]"


def test_a_failed_write_names_the_file_and_leaves_nothing_behind(tmp_path):
    with pytest.raises(WriteError) as error:
        with staged(tmp_path / "out.bin"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(error.value) == f"{tmp_path / 'out.bin'}: could not write it (No space left on device); any file " \
                               f"already there was left as it was"
    assert list(tmp_path.iterdir()) == []
