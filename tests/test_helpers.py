"""The test helpers that other tests' verdicts rest on."""

import os
import sys

from tests.helpers import captured_fds


def test_captured_fds_sees_what_reaches_the_file_descriptors_and_restores_them(capfd) -> None:
    with captured_fds() as said:
        os.write(2, b"from C++\n")
        print("from python", file=sys.stderr)
    assert "from C++" in said[0] and "from python" in said[0]
    os.write(2, b"after\n")
    assert "after" in capfd.readouterr().err
