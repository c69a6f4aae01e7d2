import pytest

from sigmab.train.schedule import cosine_lr


def test_warmup_then_cosine_to_zero() -> None:
    lrs = [cosine_lr(s, total_steps=10, warmup_steps=2, peak_lr=1.0) for s in range(10)]
    assert lrs[:2] == [0.5, 1.0]
    assert lrs[2] == pytest.approx(1.0) and all(a >= b for a, b in zip(lrs[2:], lrs[3:]))
    assert cosine_lr(10, total_steps=10, warmup_steps=2, peak_lr=1.0) == pytest.approx(0.0)
