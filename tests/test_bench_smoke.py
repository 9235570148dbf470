"""The benchmark runs: ``python -m bench --quick --only S1 --impl ours``.

Cheap (one scenario, our implementation only, about 10 s) and needs none of
the peers' virtualenvs, so it runs wherever the test-suite runs.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tree(path: Path) -> set[Path]:
    return set(path.rglob("*"))


@pytest.mark.timeout(120)
def test_bench_quick_s1_ours(tmp_path):
    out_json, out_md = tmp_path / "results.json", tmp_path / "results.md"
    before = _tree(ROOT / "bench")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "S1", "--impl", "ours",
         "--json", str(out_json), "--markdown", str(out_md)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=110,
    )
    assert run.returncode == 0, run.stdout
    assert _tree(ROOT / "bench") == before, "the benchmark wrote into the repository"
    results = json.loads(out_json.read_text())["results"]["S1"]["ours"]
    assert "error" not in results, results
    assert results["median"]["sets_per_s"] > 0
    assert results["median"]["final_lost"] == 0
    assert "S1 set() rate" in out_md.read_text()
