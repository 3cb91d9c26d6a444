"""The Merkle tree hash of RFC 6962 (Certificate Transparency) §2.1 over the
trail's entries, inclusion proofs (§2.1.1) and their verification as RFC
9162 §2.1.3.2 gives it, and consistency proofs (§2.1.2, verified as RFC
9162 §2.1.4.2).

The leaves are the entries in ``seq`` order, each leaf's data the 32 bytes
of the entry's ``entry_hash`` (which covers every stored field of the
entry and, through their sha256s, its documents)::

    leaf hash  = SHA-256(0x00 || entry_hash bytes)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256()

A tree of n leaves splits at k, the largest power of two below n: the
left subtree holds the first k leaves. Everything here is pure and works
on hashes as bytes; :mod:`.checkpoint` reads the leaves from a trail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "prefix_roots",
    "root_from_inclusion",
    "tree_hash",
    "verify_consistency",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()

# A range of leaves, read on demand: (start, end) -> their leaf data in order.
LeafReader = Callable[[int, int], Iterable[bytes]]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class _Stack:
    """Leaf hashes folded as they stream in: the perfect subtrees of the
    leaves so far, largest first (at most log2(n) of them)."""

    def __init__(self) -> None:
        self.nodes: list[tuple[int, bytes]] = []  # (leaves covered, hash)
        self.size = 0

    def push(self, data: bytes) -> None:
        node = (1, leaf_hash(data))
        while self.nodes and self.nodes[-1][0] == node[0]:
            width, left = self.nodes.pop()
            node = (width * 2, node_hash(left, node[1]))
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        # RFC 6962's tree of the leaves so far: the perfect subtrees,
        # largest first, are the left children down the right edge.
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            acc = node_hash(left, acc)
        return acc


def tree_hash(leaves: Iterable[bytes]) -> bytes:
    """MTH of the leaves (their data, in order), streamed: O(log n) memory."""
    stack = _Stack()
    for data in leaves:
        stack.push(data)
    return stack.root()


def prefix_roots(leaves: Iterable[bytes], sizes: Iterable[int]) -> tuple[int, dict[int, bytes]]:
    """The number of leaves, and MTH of the first ``s`` leaves for every
    ``s`` in ``sizes`` that is no larger: one pass however many sizes (every
    checkpoint of a log checked at once)."""
    wanted = set(sizes)
    roots: dict[int, bytes] = {}
    stack = _Stack()
    if 0 in wanted:
        roots[0] = EMPTY_ROOT
    for data in leaves:
        stack.push(data)
        if stack.size in wanted:
            roots[stack.size] = stack.root()
    return stack.size, roots


def inclusion_proof(index: int, size: int, read: LeafReader) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1: the sibling subtree
    hashes from the leaf up. ``read(a, b)`` gives the leaf data of leaves
    a..b-1; each leaf is read once."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    siblings: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo = lo + k
    for a, b in reversed(siblings):
        path.append(tree_hash(read(a, b)))
    return path


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or
    ValueError when the path's length does not fit the tree. ``leaf`` is
    the leaf's data (not its hash)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if sn == 0:
            raise ValueError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree is deep")
    return r


def consistency_proof(old: int, new: int, read: LeafReader) -> list[bytes]:
    """PROOF(old, D[0:new]) of RFC 6962 §2.1.2."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} leaves")
    out: list[bytes] = []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                out.append(tree_hash(read(lo, hi)))
            return
        k = _split(n)
        if m <= k:
            subproof(m, lo, lo + k, complete)
            out.append(tree_hash(read(lo + k, hi)))
        else:
            subproof(m - k, lo + k, hi, False)
            out.append(tree_hash(read(lo, lo + k)))

    if old < new:
        subproof(old, 0, new, True)
    return out


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree of ``new`` leaves extends the tree
    of ``old`` (RFC 9162 §2.1.4.2)."""
    if old == new:
        return not proof and old_root == new_root
    if not 0 < old < new or not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
