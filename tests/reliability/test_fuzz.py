"""Fuzzing with hypothesis: record names, field values, .db macro substitution,
whole .db files and autosave files (fuzz_targets.py), each target in its own
process, since a crash of the EPICS core would end it. Each must accept its
input or raise a clear exception; an unreadable autosave file only warns.
``PYTHONIOC_FUZZ_EXAMPLES`` sets the examples per target (default 150)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from softioc.testing import client_env, free_port

pytest.importorskip("hypothesis", reason="pip install hypothesis (in the test extra)")

TARGETS = Path(__file__).parent / "fuzz_targets.py"
EXAMPLES = os.environ.get("PYTHONIOC_FUZZ_EXAMPLES", "150")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("target", ["names", "fields", "macros", "dbtext",
                                    "autosave_bytes", "autosave_json"])
def test_fuzz(target: str) -> None:
    env = dict(os.environ, **client_env(free_port(), free_port(), free_port()))
    result = subprocess.run([sys.executable, str(TARGETS), target, EXAMPLES], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            timeout=230)
    tail = result.stdout[-4000:]
    assert result.returncode == 0, f"{target} (exit {result.returncode}):\n{tail}"
    done = re.search(rf"^{target}: (\d+) examples run \((\d+) asked\), no crash$",
                     result.stdout, re.MULTILINE)
    assert done and done[2] == EXAMPLES, tail
    # hypothesis may stop early when it runs out of new inputs; none of these
    # targets should come close.
    assert int(done[1]) >= min(int(EXAMPLES), 50), done[0]
