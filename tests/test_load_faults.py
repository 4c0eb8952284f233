"""A short run of the sustained load and fault script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "load_faults.py"


def test_load_with_killed_worker_keeps_invariants() -> None:
    """No 5xx, no lost token and one live refresh token per family (RFC 9700 §4.14.2)."""
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--duration",
            "8",
            "--clients",
            "6",
            "--users",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)

    assert report["requests_sent"] > 100
    assert report["five_hundreds"] == 0
    assert report["four_hundreds"] == 0
    assert report["connection_errors_outside_kill_window"] == 0
    assert report["tokens_missing_from_database"] == 0
    assert report["families_with_two_live_refresh_tokens"] == 0
    assert report["usable"].get("access_failed", 0) == 0
    assert report["usable"].get("refresh_failed", 0) == 0
    assert result.returncode == 0
