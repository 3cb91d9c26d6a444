"""The calfrehab library. Layers, lowest first; a layer imports only below it
(the import contract in ``.importlinter`` states the same order and
import-linter checks every import against it; one line a module, with what
each owns, in ``docs/architecture.md``).

- ``vocabulary``, ``errors``, ``canonical``, ``clock``, ``limits``, ``safeio``, ``textsafe``,
  ``distversion``: the contract's names (tracks, decision kinds, outcomes,
  rungs, exercise ids), the domain errors, and the shared utilities
  (canonical JSON and hashes, the clock, program limits, safe file I/O, text
  safe for a terminal or a CSV cell, installed versions).
- ``clinic``: the clinic's configuration (``calfrehab.toml``: name, phone,
  clinician, time zone, trail, review interval) and its calendar day.
- ``casefile``: case-file models, their JSON Schema, validation, document paths.
- ``trail``: the audit trail's storage (on-disk layout, hash chain,
  integrity, compression, checkpoints and proofs, migration, shards); it
  decides nothing, so it sits below the rules.
- ``knowledge``: rule language, loader, ladder, fact catalogue, conditions,
  compiler.
- ``inference``: fact computation, the durable-rules driver (runs rulesets,
  records firings) and the safety policy (conflicts, ladder moves, prescribe).
- ``explanation``: the decision document, reasons, HOW / WHY-NOT, and the
  clinician's wording of doses and reasons.
- ``fhir``: FHIR R4 in and out (a case as a Bundle and back, a decision as
  GuidanceResponse, RequestGroup, DetectedIssue, Provenance) and CDS Hooks
  cards.
- ``entry``: the interviews that write case files (new, log, assess).
- ``pipeline``: one case through all of the above; reasoners cached per rules
  directory.
- ``audit``: the audit trail's use-cases (list, show, replay under the
  current rules, verify against checkpoints, export, override, accept).
- ``acceptance``: a recorded decision (through its override) accepted into
  the case's programme and recorded; a case's current state from the trail.
- ``course``: a scripted patient's weekly reviews replayed under the rules
  (the course simulator) and the milestones a course reaches.
- ``ruletest``, ``batch``: case tables that test a knowledge base as data;
  many cases, worker processes, resume.
- ``report``: the course report and the patient handout (HTML).
- ``api``: the public face (``docs/api.md``), one module per audience; the
  CLI imports nothing else.
"""
