"""The audit trail's storage: a hash-chained, append-only record of
decisions, clinician overrides and acceptances (docs/audit-trail.md). It
decides nothing: what is done with a trail (list, show, replay, verify
against checkpoints, override, accept) is :mod:`calfrehab.engine.audit`.

- ``schema``: the tables of format versions 1 to 4.
- ``chain``: entry hashes, reading a row's documents back, verifying rows.
- ``codec``: zstd (format 4; zlib in formats 2 and 3) with preset
  dictionaries for the stored documents.
- ``prepared``: ``prepare_entry`` (in a worker) -> ``PreparedEntry``;
  ``compress_entries`` compresses a chunk's entries together.
- ``payloads``: who asked (requester), an override's prescription, an
  acceptance's document.
- ``connection``: the one SQLite connection of an operation (what is
  refused before SQLite opens a path; WAL, busy timeout; read-only).
- ``audit``: ``AuditTrail``: record, override, accept (``BEGIN
  IMMEDIATE``), read, check one entry, verify, export.
- ``integrity``: checks beyond the chain (dictionaries, orphan cases, an
  entry's documents against its columns).
- ``export``: an entry as a JSON line or a CSV row.
- ``merkle``: RFC 6962's Merkle tree hash, inclusion and consistency proofs.
- ``checkpoint``: signed checkpoints (Ed25519), a trail and a proof
  checked against them.
- ``migrate``: format 1 -> 2 -> 3 -> 4, in place (and a format-4 trail's
  indexes brought to the current set).
- ``shards``: one trail per batch partition and the manifest chaining them.
"""
