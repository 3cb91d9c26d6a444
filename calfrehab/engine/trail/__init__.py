"""The audit trail's storage: a hash-chained, append-only record of
decisions, clinician overrides and acceptances (docs/audit-trail.md). It
decides nothing: what is done with a trail (list, show, replay, verify
against checkpoints, override, accept) is :mod:`calfrehab.engine.audit`.

- ``schema``: the tables of format versions 1, 2 and 3.
- ``chain``: entry hashes, reading a row's documents back, verifying rows.
- ``codec``: zlib with preset dictionaries for the stored documents.
- ``prepared``: ``prepare_entry`` (in a worker) -> ``PreparedEntry``.
- ``payloads``: who asked (requester), an override's prescription, an
  acceptance's document.
- ``audit``: ``AuditTrail``: open (read-write or read-only), record,
  override, accept, read, check one entry, verify, export.
- ``merkle``: RFC 6962's Merkle tree hash, inclusion and consistency proofs.
- ``checkpoint``: signed checkpoints (Ed25519), a trail and a proof
  checked against them.
- ``migrate``: format 1 -> 2 -> 3, in place.
- ``shards``: one trail per batch partition and the manifest chaining them.
"""
