"""``calfrehab serve``: the CDS Hooks 2.0 service and the plain JSON API.

An edge like the CLI: it calls :mod:`calfrehab.engine.api` and nothing
deeper. Needs the ``serve`` extra (Starlette, uvicorn, PyJWT).
"""
