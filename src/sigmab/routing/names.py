"""Names of a tree's units, read from the router decisions that reach them.

Node ``n<bits>`` is reached by the decisions ``<bits>`` (``n0``, ``n01``...); router ``r<bits>`` sits
at the end of the backbone (``r``) or of inner node ``n<bits>``. A tree of depth D has ``2**D`` leaves,
the nodes at full depth, and ``2**D - 1`` routers.
"""

from __future__ import annotations

from collections.abc import Iterator

BRANCHES = (0, 1)


def node_key(bits: str) -> str:
    return f"n{bits}"


def router_key(bits: str) -> str:
    return f"r{bits}"


def unit_bits(key: str) -> str:
    """The decision string of a node or router key: ``n01`` -> ``01``, ``r`` -> ``''``."""
    return key[1:]


def is_router(key: str) -> bool:
    return key.startswith("r")


def children(bits: str) -> tuple[str, str]:
    return f"{bits}0", f"{bits}1"


def router_bits(depth: int) -> Iterator[str]:
    """Every router's decision prefix, root first, level by level."""
    for level in range(depth):
        for prefix in range(2**level):
            yield format(prefix, f"0{level}b") if level else ""


def leaf_names(depth: int) -> list[str]:
    """Leaves in index order: leaf ``i`` is reached by the binary digits of ``i``."""
    return [node_key(format(i, f"0{depth}b")) for i in range(2**depth)]


def leaf_index(bits: str) -> int:
    return int(bits, 2)


def path_keys(leaf: str) -> tuple[list[str], list[str]]:
    """(node keys, router keys) on the path to ``leaf``, root first."""
    bits = unit_bits(leaf)
    return [node_key(bits[: d + 1]) for d in range(len(bits))], [router_key(bits[:d]) for d in range(len(bits))]
