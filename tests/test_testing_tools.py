"""softioc.testing.epics_tool gives tools whose exit status can be trusted."""

import subprocess

import pytest

from softioc.testing import client_env, epics_tool, free_port


def test_tool_exits_nonzero_for_a_missing_pv():
    env = client_env(free_port(), free_port(), free_port())
    result = subprocess.run([epics_tool("caget"), "-w", "0.3", "NO:SUCH:PV"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=20)
    assert result.returncode != 0, result.stdout       # the wrapper would say 0
    assert "not found" in result.stdout, result.stdout


def test_unknown_tool_raises():
    with pytest.raises(FileNotFoundError, match="no binary nosuchtool"):
        epics_tool("nosuchtool")
