"""``calfrehab app``: the physiotherapist's screen, a small web app over the
public API (``calfrehab.engine.api``) and nothing beneath it.

Server-rendered HTML (Starlette and Jinja2, autoescaped) that works with
scripts disabled; one case file per patient in a cases directory, and the
clinic's audit trail. The modules, one concept each:

- ``settings``: where it listens, which cases and trail it serves;
- ``casedir``: the cases directory, read with each file's sha256;
- ``trailindex``: the trail's latest decision per case, for the list;
- ``forms``: a posted form answering the library's interview questions;
- ``security``: sign-in sessions, CSRF tokens, security headers;
- ``accounts``: clinicians' accounts, argon2-hashed;
- ``pages``: the pages and the writes behind their forms;
- ``web``: the Starlette application that routes to them;
- ``command``: the ``calfrehab app`` command.
"""
