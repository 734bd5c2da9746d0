"""`make test` runs ruff, mypy, the deployment checks and pytest whatever the others gave, and fails
when any of them failed: a broken manifest must not stop the tests from running, nor pass."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# One quick test that needs no servers: enough to show that pytest ran after the deploy checks.
CANARY = "tests/unit/test_shard_plan.py::test_pods_own_consecutive_ranges"


@pytest.mark.slow
def test_broken_manifest_fails_the_run_but_not_the_tests(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    shutil.copytree(ROOT / "k8s", k8s)
    kustomization = k8s / "base" / "kustomization.yaml"
    text = kustomization.read_text()
    assert "\nresources:\n" in text
    kustomization.write_text(text.replace("\nresources:\n", "\nresources:\n  - missing.yaml\n"))
    # Not the outer `make test`'s flags (its PYTEST_ARGS would be passed down).
    outer_make = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    env = {
        **{name: value for name, value in os.environ.items() if name not in outer_make},
        "K8S_DIR": str(k8s),
        # The canary needs no servers: placeholders keep scripts/services.sh from starting any.
        "TEST_DATABASE_URL": "postgres://postgres@127.0.0.1:1/unused",
        "TEST_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = subprocess.run(
        ["make", "--no-print-directory", "test", f"PYTEST_ARGS={CANARY} -p no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"FAILED: kustomize {k8s}/base" in output
    assert re.search(r"\b1 passed\b", output), output
    summary = result.stdout.strip().splitlines()[-1]
    verdicts = r"summary: ruff (ok|FAILED), mypy (ok|FAILED), deploy checks FAILED, pytest ok"
    assert re.fullmatch(verdicts, summary)
