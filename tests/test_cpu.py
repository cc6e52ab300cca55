"""The CLI asks OpenMP's threads to sleep while they wait (a shared machine's cores), unless the user chose."""

from __future__ import annotations

import subprocess
import sys

CHILD = "import os, sys; from rro.cli import app; sys.argv = ['rro', 'envs']\ntry:\n    app()\nexcept SystemExit:\n    pass\nprint('POLICY', os.environ.get('OMP_WAIT_POLICY'))"


def _policy_seen_by_a_command(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300).stdout
    return out.rsplit("POLICY ", 1)[1].strip()


def test_the_cli_sets_a_passive_wait_policy_unless_the_user_set_one():
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy_seen_by_a_command(env) == "PASSIVE"
    assert _policy_seen_by_a_command({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
