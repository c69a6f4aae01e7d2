import pytest

from sigmab.runtime import ByteLRU


def test_evicts_least_recently_used_until_it_fits() -> None:
    evicted = []
    cache = ByteLRU(100, on_evict=lambda k, v: evicted.append(k))
    assert cache.insert("a", 1, 40) and cache.insert("b", 2, 40)
    assert cache.lookup("a") == 1  # a is now most recent
    assert cache.insert("c", 3, 50)  # needs 30 more bytes: b goes, a stays
    assert evicted == ["b"] and cache.keys() == ["a", "c"] and cache.used == 90
    assert cache.insert("d", 4, 100)  # everything else goes
    assert evicted == ["b", "a", "c"] and cache.used == 100


def test_an_entry_larger_than_the_cache_is_not_stored_and_evicts_nothing() -> None:
    cache = ByteLRU(10)
    cache.insert("a", 1, 10)
    assert not cache.insert("big", 2, 11)
    assert "a" in cache and "big" not in cache and cache.lookup("big") is None


def test_bad_use_is_refused() -> None:
    with pytest.raises(ValueError):
        ByteLRU(-1)
    cache = ByteLRU(10)
    cache.insert("a", 1, 1)
    with pytest.raises(KeyError):
        cache.insert("a", 1, 1)
