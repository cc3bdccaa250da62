"""Makes a throwaway RSA signing key for the load harness's auth scenario: writes the JWKS
(public key only) to the given directory and prints a long-lived RS256 access token for
the storefront assistant of tenant acme-retail."""

import base64
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def main():
    out_dir, issuer = sys.argv[1], sys.argv[2]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "RSA", "kid": "load-1", "alg": "RS256", "use": "sig", "n": b64(pub.n), "e": b64(pub.e)}]}
    with open(f"{out_dir}/jwks.json", "w") as f:
        json.dump(jwks, f)
    now = int(time.time())
    claims = {"iss": issuer, "sub": "storefront-web", "aud": "warden", "iat": now, "exp": now + 3600,
              "tenant_id": "acme-retail", "roles": ["storefront-assistant"], "scope": "chat"}
    print(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "load-1"}))


if __name__ == "__main__":
    main()
