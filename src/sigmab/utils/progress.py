"""Progress bars that appear on a terminal and stay out of logs and pipes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_bar(iterable: Iterable[T], *, enabled: bool = True, **kwargs: Any) -> tqdm[T]:
    """``tqdm`` over ``iterable``; hidden when ``enabled`` is False or stderr is not a terminal."""
    return tqdm(iterable, disable=None if enabled else True, leave=False, dynamic_ncols=True, **kwargs)
