"""Verify a Vouch e2ee-ent+jwt token offline against the JWKS; print its claims.

usage: verify.py ISSUER AUDIENCE [JWKS_URL] < token   (exit 0: valid, 1: invalid)
"""
import json, sys
import jwt  # PyJWT, with `cryptography` for EdDSA

issuer, audience = sys.argv[1], sys.argv[2]
jwks_url = sys.argv[3] if len(sys.argv) > 3 else issuer.rstrip("/") + "/.well-known/jwks.json"
token = sys.stdin.read().strip()  # not argv: a token is a secret, and argv is visible in `ps`
try:
    key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)  # by the token's `kid`
    verified = jwt.decode_complete(
        token, key, algorithms=["EdDSA"], issuer=issuer, audience=audience, leeway=30,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "ent"]})
    if verified["header"].get("typ") != "e2ee-ent+jwt":
        raise jwt.InvalidTokenError("typ is not e2ee-ent+jwt")
    if "e2ee" not in verified["payload"]["ent"]:
        raise jwt.InvalidTokenError("no e2ee entitlement")
except jwt.PyJWTError as e:
    sys.exit(f"invalid token: {type(e).__name__}: {e}")
print(json.dumps(verified["payload"], indent=2))
