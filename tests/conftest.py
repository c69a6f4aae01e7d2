"""Shared fixtures. Tests that need ../shared skip locally when it is absent, but fail under CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def require_shared(*relative: str) -> list[Path]:
    paths = [SHARED / r for r in relative]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        message = f"needs ../shared: missing {', '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return paths


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
