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


@pytest.fixture
def float64():
    """New modules and tensors in float64 for one test: equivalence tests then test the slicing, not float32
    summation order (which moves a random ResNet-50's logits by ~1e-4 between machines)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
