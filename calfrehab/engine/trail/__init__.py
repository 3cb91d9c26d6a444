"""The audit trail: a hash-chained, append-only record of decisions and
clinician overrides, and the views that read it (docs/audit-trail.md).

- ``schema``: the tables of format versions 1 and 2.
- ``chain``: entry hashes, reading a row's documents back, verifying rows.
- ``codec``: zlib with preset dictionaries for the stored documents.
- ``prepared``: ``prepare_entry`` (in a worker) -> ``PreparedEntry``.
- ``audit``: ``AuditTrail``: open (read-write or read-only), record,
  read, check one entry, verify, export.
- ``migrate``: format 1 -> 2, in place, resumable.
- ``shards``: one trail per batch partition and the manifest chaining them.
- ``views``: what the ``calfrehab audit`` commands show, as data.
"""
