"""A test identity provider: real RSA/EC keys, a JWKS, and tokens minted with PyJWT.

The gateway loads the JWKS from its filter config (the request path never calls out), so the
issuer needs no server; `jwks()` is what an operator (or the xDS server) would inline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from functools import cached_property
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    """One issuer with an RS256 key (kid `rsa-1`) and an ES256 key (kid `ec-1`)."""

    def __init__(self, issuer: str = "https://idp.test", audience: str = "http://localhost:10000/mcp"):
        self.issuer = issuer
        self.audience = audience

    @cached_property
    def rsa_key(self) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @cached_property
    def ec_key(self) -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    @cached_property
    def other_rsa_key(self) -> rsa.RSAPrivateKey:
        """A key the gateway does not know (for bad-signature tokens)."""
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        rn = self.rsa_key.public_key().public_numbers()
        en = self.ec_key.public_key().public_numbers()
        return {
            "keys": [
                {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": _int_b64(rn.n), "e": _int_b64(rn.e)},
                {
                    "kty": "EC",
                    "kid": "ec-1",
                    "use": "sig",
                    "alg": "ES256",
                    "crv": "P-256",
                    "x": b64url(en.x.to_bytes(32, "big")),
                    "y": b64url(en.y.to_bytes(32, "big")),
                },
            ]
        }

    def claims(self, sub: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        c = {"iss": self.issuer, "aud": self.audience, "sub": sub, "iat": now, "exp": now + 300, "scope": "mcp"}
        c.update(overrides)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, sub: str = "alice", alg: str = "RS256", kid: str | None = None, key=None, **claims: Any) -> str:
        key = key or (self.rsa_key if alg.startswith("RS") else self.ec_key)
        kid = kid or ("rsa-1" if alg.startswith("RS") else "ec-1")
        return jwt.encode(self.claims(sub, **claims), key, algorithm=alg, headers={"kid": kid})

    def unsigned_token(self, sub: str = "alice") -> str:
        """`alg: none` (RFC 7519 §6): must never be accepted."""
        header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(self.claims(sub)).encode())
        return f"{header}.{payload}."

    def hs256_with_public_key(self, sub: str = "alice") -> str:
        """The classic key-confusion attack: HMAC-signed with the RSA *public* key as secret."""
        secret = self.rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        payload = b64url(json.dumps(self.claims(sub)).encode())
        sig = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(sig)}"

    def provider(self, name: str = "test", **extra: Any) -> dict[str, Any]:
        """The gateway's `identity.providers[]` entry for this issuer."""
        return {"name": name, "issuer": self.issuer, "audiences": [self.audience], "jwks": self.jwks(), **extra}

    def forwarded_payload(self, sub: str = "alice", **claims: Any) -> str:
        """What Envoy's `jwt_authn` writes to `forward_payload_header`: the token's payload,
        base64url without padding (the module accepts it with or without)."""
        return b64url(json.dumps(self.claims(sub, **claims)).encode())

    def jwt_authn_provider(self, forward_payload_header: str = "x-jwt-payload", **extra: Any) -> dict[str, Any]:
        """An Envoy `jwt_authn` provider for this issuer with the JWKS inline (`local_jwks`)."""
        return {
            "issuer": self.issuer,
            "audiences": [self.audience],
            "local_jwks": {"inline_string": json.dumps(self.jwks())},
            "forward_payload_header": forward_payload_header,
            **extra,
        }
