// An application signing its user in with openid-client, as tests/oidc_client.rs asks:
// discovery, the code flow with PKCE, state and nonce (this script plays the browser
// on the sign-in page), the ID token validated by the library, userinfo, a refresh,
// and the ID token checked again with jose against the JWKS alone. Prints what it
// learned as one JSON line; any failure exits non-zero with the reason.
import * as client from 'openid-client';
import * as jose from 'jose';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const issuer = env('ISSUER');
const clientId = env('CLIENT_ID');
const redirectUri = env('REDIRECT_URI');

const config = await client.discovery(
  new URL(issuer),
  clientId,
  undefined,
  client.ClientSecretBasic(env('CLIENT_SECRET')),
);

const verifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const state = client.randomState();
const authorize = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  nonce,
  state,
});

// The browser: open the sign-in page, then send its form with the user's password.
const page = await fetch(authorize, { redirect: 'manual' });
if (page.status !== 200) throw new Error(`the sign-in page answered ${page.status}`);
const html = await page.text();
const cookie = page.headers.get('set-cookie').split(';')[0];
const form = new URLSearchParams();
for (const [, name, value] of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
  form.set(name, value.replaceAll('&amp;', '&').replaceAll('&quot;', '"'));
}
form.set('username', env('USERNAME'));
form.set('password', env('PASSWORD'));
form.set('action', 'approve');
const signedIn = await fetch(authorize.origin + authorize.pathname, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
  body: form,
  redirect: 'manual',
});
if (signedIn.status !== 303) throw new Error(`the sign-in answered ${signedIn.status}`);
const callback = new URL(signedIn.headers.get('location'));

const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  expectedState: state,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);

// An independent check: jose, with the keys the JWKS publishes and nothing else.
const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, {
  issuer,
  audience: clientId,
  algorithms: ['ES256'],
});

console.log(JSON.stringify({
  sub: claims.sub,
  nonce_echoed: claims.nonce === nonce,
  preferred_username: claims.preferred_username,
  userinfo,
  refreshed_sub: refreshed.claims()?.sub,
  jose_sub: payload.sub,
  jose_alg: protectedHeader.alg,
  jose_kid: protectedHeader.kid,
}));
