"""Keys and tokens for trying calfrehab's CDS Hooks service by hand.

A record system signs a fresh JWT for every call (CDS Hooks 2.0, "Trusting
CDS Clients"). This script plays that part for a developer:

    python scripts/cds_token.py keygen cds-dev/          # key pair, JWK Set, cds.toml
    python scripts/cds_token.py token cds-dev/ http://127.0.0.1:8765/cds-services

``keygen`` writes an EC P-384 private key (``private.pem``, mode 0600),
its public JWK Set (``jwks.json``) and a service configuration
(``cds.toml``) that trusts it. ``token`` prints a JWT (ES384) for one call
to the given URL: ``aud`` is that URL, it expires in 5 minutes, and its
``jti`` is new each time (the service accepts a token once).

Needs the serve extra (PyJWT, cryptography). Not for production keys.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

ISSUER = "https://ehr.dev.example"
KID = "dev-key-1"


def keygen(directory: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private = directory / "private.pem"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwks = {"keys": [{**jwk, "kid": KID, "alg": "ES384", "use": "sig"}]}
    (directory / "jwks.json").write_text(json.dumps(jwks, indent=2) + "\n")
    (directory / "cds.toml").write_text(
        "# calfrehab serve --config cds.toml\n"
        "[[issuers]]\n"
        f'iss = "{ISSUER}"\n'
        'jwks_file = "jwks.json"\n'
        'algorithms = ["ES384"]\n')
    print(f"wrote {private}, {directory / 'jwks.json'}, {directory / 'cds.toml'}")


def token(directory: Path, url: str) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((directory / "private.pem").read_bytes(), None)
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "dev-ehr", "aud": url, "iat": now, "exp": now + 300,
              "jti": str(uuid.uuid4())}
    print(jwt.encode(claims, key, algorithm="ES384",  # type: ignore[arg-type]
                     headers={"kid": KID, "typ": "JWT"}))


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "keygen":
        keygen(Path(argv[2]))
    elif len(argv) == 4 and argv[1] == "token":
        token(Path(argv[2]), argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
