"""The calfrehab library. Layers, lowest first; a layer imports only below it.

- ``vocabulary``, ``errors``: the contract's names (tracks, decisions, rungs,
  exercise ids) and the domain errors.
- ``casefile``: case-file models, validation, document paths.
- ``knowledge``: rule language, loader, ladder, fact catalogue, conditions,
  compiler.
- ``inference``: fact computation, the durable-rules driver (runs rulesets,
  records firings) and the safety policy (conflicts, ladder moves, prescribe).
- ``explanation``: the decision document, reasons, HOW / WHY-NOT.
- ``trail``: the audit trail and its views.
- ``ruletest``: case tables that test a knowledge base as data.
- ``batch``: many cases, worker processes, resume.
- ``api``: the public face; the CLI calls nothing else.
"""
