"""A least-recently-used cache bounded by bytes, shared by the leaf-on-demand runtime and the edge model."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ByteLRU(Generic[V]):
    """Holds values with a byte size; inserting past ``capacity`` evicts the least recently used first.

    An entry larger than the whole capacity is never stored (it is streamed, used and dropped).
    ``on_evict(key, value)`` runs for each evicted entry.
    """

    def __init__(self, capacity: int, on_evict: Callable[[Hashable, V], None] | None = None) -> None:
        if capacity < 0:
            raise ValueError("cache capacity must be >= 0 bytes")
        self.capacity = capacity
        self.on_evict = on_evict
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self.used = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        return list(self._entries)

    def lookup(self, key: Hashable) -> V | None:
        """The value (now most recently used), or None on a miss."""
        return self._entries[key][0] if self.touch(key) else None

    def touch(self, key: Hashable) -> bool:
        """True on a hit (the entry becomes most recently used), False on a miss."""
        if key not in self._entries:
            return False
        self._entries.move_to_end(key)
        return True

    def insert(self, key: Hashable, value: V, nbytes: int) -> bool:
        """Store ``value``; False (and nothing evicted) when it is larger than the capacity."""
        if key in self._entries:
            raise KeyError(f"{key!r} is already cached")
        if nbytes > self.capacity:
            return False
        while self.used + nbytes > self.capacity:
            old_key, (old_value, old_bytes) = self._entries.popitem(last=False)
            self.used -= old_bytes
            if self.on_evict is not None:
                self.on_evict(old_key, old_value)
        self._entries[key] = (value, nbytes)
        self.used += nbytes
        return True
