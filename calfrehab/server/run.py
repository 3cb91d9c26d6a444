"""Start the service under uvicorn."""

from __future__ import annotations

import logging
import sys

from calfrehab.server.config import ServerConfig

log = logging.getLogger("calfrehab.server")


def serve(config: ServerConfig) -> None:
    import uvicorn

    from calfrehab.server.app import create_app
    from calfrehab.server.protocol import guarded_protocol

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    if config.insecure_no_auth:
        # Said once at start; every call it lets through is logged again
        # (app.authenticate), so the log shows it wherever one reads it.
        log.warning("!!! AUTHENTICATION IS OFF (--insecure-dev-no-auth): every caller is "
                    "trusted. For development on this machine only. !!!")
    elif not config.issuers:
        log.warning("no trusted issuers configured: every call will be refused (401)")
    app = create_app(config)
    log.info("listening on http://%s:%d (CDS Hooks discovery at /cds-services)",
             config.host, config.port)
    uvicorn.run(
        app, host=config.host, port=config.port, workers=1,
        # Our own one-line log per request holds no patient data; uvicorn's
        # access log would repeat it.
        access_log=False, log_level="warning",
        # Open connections at once (past it: JSON 503) and a time limit on
        # request headers (server/protocol.py). Decisions waiting are
        # bounded apart (limits.max_pending).
        http=guarded_protocol(config.limits.header_timeout_s, config.limits.max_connections),
        timeout_keep_alive=5,
    )
