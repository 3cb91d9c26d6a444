"""calfrehab: rules-based decision support for calf-strengthening rehab.

- ``calfrehab.engine``: the library (case files, knowledge base, inference,
  explanation, audit trail, batch); its public face is ``calfrehab.engine.api``.
- ``calfrehab.cli``: the ``calfrehab`` command, thin click commands over the API.
- ``calfrehab/rules``: the shipped knowledge base, as YAML data (``rules/`` at the
  top of the repository, mapped into the wheel; no Python there).
"""
