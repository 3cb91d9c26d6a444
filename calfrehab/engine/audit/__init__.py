"""The audit trail's use-cases, one layer above the pipeline: what the
``calfrehab audit`` commands, the service and the app do with a trail
(list, show, replay under the current rules, verify against checkpoints,
export to a file, migrate, record an override or an acceptance, sign a
checkpoint, prove an entry), as plain data.

The trail itself (connection, schema, hash chain, integrity, export,
compression, checkpoints) is :mod:`calfrehab.engine.trail`, below the
pipeline: it never decides anything. ``replay`` is the one use-case that
decides (a stored case under the current rules), which is why this layer
sits above the pipeline.

- ``views``: every use-case above, as functions returning JSON-ready dicts.
"""
