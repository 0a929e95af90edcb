// A certified OpenID provider (panva's npm `oidc-provider`, pinned in package.json) as the IdP of Aquifer's end-to-end
// tests (tests/test_oidc_provider.py): the provider's own discovery (/.well-known/openid-configuration), JWKS (/jwks),
// token endpoint (/token), authorization endpoint (/auth) and JWT access-token format (typ at+jwt), with signing keys
// generated at start (ES256 and RS256).
//
// How the demo users get tokens. Two routes, both issuing the provider's own AccessToken model, signed by its keystore:
//
// 1. `grant_type=password` (RFC 6749 section 4.3; username, password `demo`), registered with
//    `provider.registerGrantType`. Non-interactive, one POST: what the tests use for every user. oidc-provider does not
//    ship this grant (OAuth 2.1 drops it), so the handler here only checks the demo password and builds
//    `new provider.AccessToken({accountId, client, gty, scope, resourceServer})`; `accountId` makes `sub` the
//    username (with the client id as `sub` only when there is no account), and the provider's JWT format, audience,
//    lifetime, `jti`, `iat`, `exp` and signature do the rest.
// 2. The standard authorization-code flow (with PKCE) through the provider's `devInteractions` pages, driven over HTTP
//    by the test: the route a real deployment takes, checked once (devInteractions accept any password; findAccount
//    refuses logins that are not demo users).
//
// Both put `groups`, `department`, `name` and `email` into the access token through `extraTokenClaims`, read from the
// users file on every token, so a test that edits the file sees it in the next token.
//
// The resource (RFC 8707 `resource` parameter) chooses the audience and the signing algorithm:
//   urn:aquifer:api        -> aud aquifer, ES256 (the default)
//   urn:aquifer:api:rs256  -> aud aquifer, RS256
//   urn:tidewater:payroll  -> aud payroll, ES256 (a token for another API, which Aquifer must refuse)
//
// Usage: node provider.mjs [PORT] [USERS_JSON]   (or OIDC_PROVIDER_PORT, AQUIFER_USERS_FILE)
// oidc-provider is imported from OIDC_PROVIDER_NODE_MODULES (a node_modules folder; `make oidc-provider` installs it
// into ~/.cache/aquifer/oidc-provider/node_modules), else from there, else as a bare import (a local npm install).
// Prints `oidc-provider ready <issuer>` on stdout once listening.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const port = Number(process.argv[2] || process.env.OIDC_PROVIDER_PORT || 8791);
const usersFile = process.argv[3] || process.env.AQUIFER_USERS_FILE
  || path.resolve(here, '..', '..', 'src', 'aquifer', 'sample', 'users.json');
const issuer = `http://127.0.0.1:${port}`;

const CLIENT_ID = 'aquifer-e2e';
const CLIENT_SECRET = 'aquifer-e2e-development-secret';
const REDIRECT_URI = 'http://127.0.0.1/callback';
const PASSWORD = 'demo';
const PASSWORD_GRANT = 'password';

async function loadOidcProvider() {
  const folders = [
    process.env.OIDC_PROVIDER_NODE_MODULES,
    path.join(os.homedir(), '.cache', 'aquifer', 'oidc-provider', 'node_modules'),
  ].filter(Boolean);
  for (const folder of folders) {
    const pkg = path.join(folder, 'oidc-provider', 'package.json');
    if (fs.existsSync(pkg)) {
      const { main } = JSON.parse(fs.readFileSync(pkg, 'utf8'));
      return import(pathToFileURL(path.join(folder, 'oidc-provider', main || 'lib/index.js')).href);
    }
  }
  return import('oidc-provider');
}

const { default: Provider, errors } = await loadOidcProvider();

function users() {
  return JSON.parse(fs.readFileSync(usersFile, 'utf8')).users;
}

function signingKey(kind, alg) {
  const options = kind === 'ec' ? { namedCurve: 'P-256' } : { modulusLength: 2048 };
  const { privateKey } = crypto.generateKeyPairSync(kind, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg.toLowerCase()}-${crypto.randomUUID()}`, alg, use: 'sig' };
}

const RESOURCES = {
  'urn:aquifer:api': { audience: 'aquifer', alg: 'ES256' },
  'urn:aquifer:api:rs256': { audience: 'aquifer', alg: 'RS256' },
  'urn:tidewater:payroll': { audience: 'payroll', alg: 'ES256' },
};
const DEFAULT_RESOURCE = 'urn:aquifer:api';

function resourceServer(indicator) {
  const found = RESOURCES[indicator];
  if (!found) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
  return {
    scope: 'context:read',
    audience: found.audience,
    accessTokenTTL: 600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: found.alg } },
  };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: [PASSWORD_GRANT, 'authorization_code'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey('ec', 'ES256'), signingKey('rsa', 'RS256')] },
  responseTypes: ['code'],
  claims: { openid: ['sub'], profile: ['name', 'email', 'department', 'groups'] },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => DEFAULT_RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => resourceServer(indicator),
    },
  },
  async findAccount(ctx, sub) {
    const entry = users()[sub];
    if (!entry) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, name: entry.name, email: entry.email, department: entry.department, groups: entry.groups };
      },
    };
  },
  async extraTokenClaims(ctx, token) {
    const entry = token.accountId ? users()[token.accountId] : undefined;
    if (!entry) return undefined;
    return { groups: [...entry.groups], department: entry.department, name: entry.name, email: entry.email };
  },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || 600,
    AuthorizationCode: 60,
    Grant: 600,
    IdToken: 600,
    Interaction: 600,
    Session: 600,
  },
});

async function passwordGrant(ctx) {
  const { username, password, resource, scope } = ctx.oidc.params;
  if (!username || !password) throw new errors.InvalidRequest('username and password are required');
  if (!Object.hasOwn(users(), username) || password !== PASSWORD) {
    throw new errors.InvalidGrant('wrong username or password');
  }
  const indicator = resource || DEFAULT_RESOURCE;
  const server = new provider.ResourceServer(indicator, resourceServer(indicator));
  const token = new provider.AccessToken({
    accountId: username,
    client: ctx.oidc.client,
    gty: PASSWORD_GRANT,
    scope: scope || server.scope,
    resourceServer: server,
  });
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();
  ctx.body = {
    access_token: value,
    token_type: token.tokenType,
    expires_in: token.expiration,
    scope: token.scope,
  };
}

provider.registerGrantType(PASSWORD_GRANT, passwordGrant, ['username', 'password', 'resource', 'scope']);

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ready ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
