// An application signing its user in with openid-client, as tests/oidc_client.rs asks:
// discovery, the code flow with PKCE, state and nonce (this script plays the browser
// on the sign-in page), the ID token validated by the library, userinfo, a refresh,
// the ID token checked again with jose against the JWKS alone, then single sign-on
// (prompt=none in the session) and RP-initiated logout. Prints what it learned as one
// JSON line; any failure exits non-zero with the reason.
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
// The browser keeps the single sign-on session's cookie.
const session = signedIn.headers
  .getSetCookie()
  .map((line) => line.split(';')[0])
  .find((pair) => pair.startsWith('__Host-portcullis_session.'));
if (!session) throw new Error('the sign-in set no session cookie');

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

// In the session, prompt=none answers with a code and no page.
const silently = async () => {
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
    prompt: 'none',
  });
  const answer = await fetch(url, { redirect: 'manual', headers: { cookie: session } });
  if (answer.status !== 302) throw new Error(`prompt=none answered ${answer.status}`);
  const back = new URL(answer.headers.get('location'));
  return back.searchParams.get('code') ? 'code' : back.searchParams.get('error');
};
const beforeLogout = await silently();

// RP-initiated logout, as the library builds it: back to the application with state.
const logoutState = client.randomState();
const endSession = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: redirectUri,
  state: logoutState,
});
const loggedOut = await fetch(endSession, { redirect: 'manual', headers: { cookie: session } });
if (loggedOut.status !== 303) throw new Error(`the logout answered ${loggedOut.status}`);
const afterLogout = new URL(loggedOut.headers.get('location'));

console.log(JSON.stringify({
  sub: claims.sub,
  nonce_echoed: claims.nonce === nonce,
  preferred_username: claims.preferred_username,
  userinfo,
  refreshed_sub: refreshed.claims()?.sub,
  jose_sub: payload.sub,
  jose_alg: protectedHeader.alg,
  jose_kid: protectedHeader.kid,
  before_logout: beforeLogout,
  logout_back_to: afterLogout.origin + afterLogout.pathname,
  logout_state_echoed: afterLogout.searchParams.get('state') === logoutState,
  after_logout: await silently(),
}));
