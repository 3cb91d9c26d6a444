"""The audit trail: a hash-chained, append-only record of decisions and
clinician overrides, and the views that read it."""
