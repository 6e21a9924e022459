// Verify a Vouch e2ee-ent+jwt token offline against the JWKS; print its claims.
// usage: node verify.mjs ISSUER AUDIENCE [JWKS_URL] < token   (exit 0: valid, 1: invalid)
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, audience, jwksUrl] = process.argv.slice(2);
if (!audience) {
  console.error('usage: node verify.mjs ISSUER AUDIENCE [JWKS_URL] < token');
  process.exit(2);
}
// Not argv: a token is a secret, and argv is visible in `ps`.
const token = readFileSync(0, 'utf8').trim();
const jwks = createRemoteJWKSet(new URL(jwksUrl ?? `${issuer.replace(/\/$/, '')}/.well-known/jwks.json`));
try {
  const { payload } = await jwtVerify(token, jwks, {
    issuer, audience, typ: 'e2ee-ent+jwt', algorithms: ['EdDSA'], clockTolerance: 30,
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'ent'],
  });
  if (!Array.isArray(payload.ent) || !payload.ent.includes('e2ee')) throw new Error('no e2ee entitlement');
  console.log(JSON.stringify(payload, null, 2));
} catch (e) {
  console.error(`invalid token: ${e.code ?? e.name}: ${e.message}`);
  process.exit(1);
}
