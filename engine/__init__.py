"""The calfrehab engine: case models, rule loading and compiling, inference,
explanation and the audit trail. Each module holds one concept."""
