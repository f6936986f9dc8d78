"""The benchmark's load generator counts what it claims to (bench/loadgen_selftest.py):
the figures in bench/README.md are only as good as its loss, order and
duplicate accounting."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_load_generator_counts_loss_duplicates_order_and_resumes_correctly():
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "loadgen_selftest.py")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
