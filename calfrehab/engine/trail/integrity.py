"""Integrity checks beyond the hash chain (:mod:`.chain` recomputes the
chain): the stored values that are not entries (the compression
dictionaries, the cases no entry refers to) and an entry whose documents
say otherwise than its columns.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from calfrehab.engine.canonical import sha256_hex

__all__ = ["dictionary_problem", "document_mismatches", "orphan_cases_problem"]


def dictionary_problem(rows: Sequence[tuple[Any, Any, Any]]) -> str | None:
    """Whether each stored compression dictionary still is what its row
    says: its sha256, and its id (the zlib DICTID, its Adler-32). A
    dictionary changed under the documents would change what they inflate
    to; the documents' own hashes would show it, but only for the entries
    read, so the dictionaries are checked themselves."""
    for dict_id, digest, body in rows:
        if (
            not isinstance(body, bytes)
            or sha256_hex(body) != digest
            or zlib.adler32(body) != dict_id
        ):
            return (
                f"compression dictionary {dict_id} was altered: its body does not match "
                "its sha256 and id"
            )
    return None


def orphan_cases_problem(conn: sqlite3.Connection) -> str | None:
    """Cases stored that no entry refers to: rows added by hand."""
    orphan = conn.execute(
        "SELECT count(*) FROM cases WHERE sha256 NOT IN "
        "(SELECT case_body_sha256 FROM entries WHERE case_body_sha256 IS NOT NULL)"
    ).fetchone()[0]
    if orphan:
        return (
            f"the cases table holds {orphan} case(s) no entry refers to: "
            "rows were added outside calfrehab"
        )
    return None


def document_mismatches(row: Mapping[str, Any], docs: Any) -> list[str]:
    """A decision entry whose documents say otherwise than its columns: the
    signs of a row rewritten with its hashes recomputed."""
    problems: list[str] = []
    seq = row["seq"]
    try:
        decision = json.loads(docs.decision)
    except ValueError:
        return [f"entry seq {seq}: the stored decision is not JSON"]
    if not isinstance(decision, dict):
        return [f"entry seq {seq}: the stored decision is not a JSON object"]
    for key in ("decision_id", "case_id", "review_date"):
        if decision.get(key) != row[key]:
            problems.append(
                f"entry seq {seq}: the decision's {key} is {decision.get(key)!r} "
                f"but the entry says {row[key]!r}"
            )
    named = decision.get("case_sha256")
    if named is not None and named != row["case_sha256"]:
        problems.append(f"entry seq {seq}: the decision names another case_sha256")
    # A stored case that does not hash to the case_sha256 the decision names
    # is not tampering by itself (a program may record a decision with the
    # case it was given); `audit show` reports it beside the case.
    return problems
