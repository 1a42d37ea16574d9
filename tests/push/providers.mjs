// tests/push/providers.mjs: a strict local stand-in for Apple's APNs
// (token-based, HTTP/2) and Google's FCM HTTP v1 push APIs, for the
// integration tests. The real providers cannot be reached from the test
// machines, so this mock answers the way the providers document they answer,
// and lets a test script error answers and read back what it was sent.
//
//   node tests/push/providers.mjs --cert CERT.pem --key KEY.pem
//        --apns-public-key P256_PUB.pem --apns-key-id KID --apns-team-id TEAM
//        --fcm-public-key RSA_PUB.pem --fcm-client-email EMAIL
//        --fcm-project PROJECT [--fcm-token-aud AUD] [--port 0]
//        [--host 127.0.0.1]
//
// Prints "READY <port>" on stdout once listening; exits 0 on SIGTERM/SIGINT.
// Only Node's built-in modules are used.
//
// Endpoints (one TLS port, HTTP/2, HTTP/1.1 allowed only where noted):
//   POST /3/device/<token>                  APNs      (HTTP/2 only)
//   POST /token                             FCM OAuth (HTTP/2 or HTTP/1.1)
//   POST /v1/projects/<p>/messages:send     FCM send  (HTTP/2 only)
//   POST /control/script   {"rules":[...]}  append scripted answers
//   GET  /control/log                       requests seen (arrival order; status
//                                           0 = not answered yet), counters
//   POST /control/reset                     clear log, rules, counters, state
//   POST /control/config   {"fcm_token_ttl": N}
//   POST /control/revoke                    forget every issued access token
//
// Sources of the rules (cited at each check below):
//   [APNS-SEND] Apple, "Sending notification requests to APNs"
//   [APNS-RESP] Apple, "Handling notification responses from APNs"
//   [APNS-TOKEN] Apple, "Establishing a token-based connection to APNs"
//   [APNS-PAYLOAD] Apple, "Generating a remote notification" (payload size)
//   [FCM-OAUTH] Google, "Using OAuth 2.0 for Server to Server Applications"
//   [FCM-SEND] Google, FCM REST v1 projects.messages.send, Message resource
//   [FCM-ERR] Google, FCM v1 ErrorCode enum / "FCM error codes"

import http2 from 'node:http2';
import crypto from 'node:crypto';
import fs from 'node:fs';

// ---------------------------------------------------------------- arguments

function usage(msg) {
  process.stderr.write(`providers.mjs: ${msg}\n` +
    'usage: node providers.mjs --cert CERT.pem --key KEY.pem ' +
    '--apns-public-key P256_PUB.pem --apns-key-id KID --apns-team-id TEAM ' +
    '--fcm-public-key RSA_PUB.pem --fcm-client-email EMAIL ' +
    '--fcm-project PROJECT [--fcm-token-aud AUD] [--apns-min-rotation-s S] [--port 0] [--host 127.0.0.1]\n');
  process.exit(2);
}

const KNOWN_FLAGS = ['cert', 'key', 'apns-public-key', 'apns-key-id',
  'apns-team-id', 'fcm-public-key', 'fcm-client-email', 'fcm-project',
  'fcm-token-aud', 'port', 'host', 'apns-min-rotation-s'];
const REQUIRED_FLAGS = ['cert', 'key', 'apns-public-key', 'apns-key-id',
  'apns-team-id', 'fcm-public-key', 'fcm-client-email', 'fcm-project'];

function parseArgs(argv) {
  const opts = { port: '0', host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (!a.startsWith('--')) usage(`unexpected argument ${a}`);
    a = a.slice(2);
    let value;
    const eq = a.indexOf('=');
    if (eq >= 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    } else {
      if (i + 1 >= argv.length) usage(`--${a} needs a value`);
      value = argv[++i];
    }
    if (!KNOWN_FLAGS.includes(a)) usage(`unknown flag --${a}`);
    opts[a] = value;
  }
  for (const f of REQUIRED_FLAGS) if (!opts[f]) usage(`--${f} is required`);
  if (!/^\d+$/.test(opts.port) || Number(opts.port) > 65535) usage('bad --port');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

function loadPublicKey(path, what) {
  let key;
  try {
    // A private key PEM is accepted too: Node derives the public key from it.
    key = crypto.createPublicKey(fs.readFileSync(path));
  } catch (e) {
    usage(`cannot read ${what} ${path}: ${e.message}`);
  }
  return key;
}

const apnsKey = loadPublicKey(opts['apns-public-key'], '--apns-public-key');
// [APNS-TOKEN] the signing key is an ES256 (P-256) key from the developer account.
if (apnsKey.asymmetricKeyType !== 'ec' ||
    apnsKey.asymmetricKeyDetails.namedCurve !== 'prime256v1') {
  usage('--apns-public-key must be an EC P-256 key');
}
const fcmKey = loadPublicKey(opts['fcm-public-key'], '--fcm-public-key');
if (fcmKey.asymmetricKeyType !== 'rsa') usage('--fcm-public-key must be an RSA key');

const APNS_KEY_ID = opts['apns-key-id'];
const APNS_TEAM_ID = opts['apns-team-id'];
const FCM_EMAIL = opts['fcm-client-email'];
const FCM_PROJECT = opts['fcm-project'];
const FCM_TOKEN_AUD = opts['fcm-token-aud'] || null;
// Apple's 20 minutes; a test that checks scheduled renewal shortens it.
const APNS_MIN_ROTATION_S = opts['apns-min-rotation-s'] !== undefined ? Number(opts['apns-min-rotation-s']) : 20 * 60;
const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

// ---------------------------------------------------------------- state

const DEFAULT_FCM_TOKEN_TTL = 3599;

function freshState() {
  return {
    log: [],               // every provider request, in arrival order
    rules: [],             // scripted answers, first match wins
    jwtsSeen: new Set(),   // distinct APNs JWTs accepted
    oauthTokensIssued: 0,
    // APNs token rotation [APNS-TOKEN]: the last distinct JWT accepted, its
    // iat, and whether the mock has since answered 403 ExpiredProviderToken.
    apnsLastJwt: null,
    apnsLastIat: null,
    apnsToldExpired: false,
    fcmTokenTtl: DEFAULT_FCM_TOKEN_TTL,
  };
}

let state = freshState();
// Issued FCM access tokens -> expiry (ms since epoch). Deliberately kept
// across /control/reset, so a server under test that cached its token keeps
// working after a test resets the mock; /control/revoke forgets them.
const fcmAccessTokens = new Map();

const nowMs = () => Date.now();
const nowS = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------- helpers

const MAX_BODY = 1024 * 1024;   // read at most this much of any request body

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    };
    req.on('data', (c) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', finish);
    req.on('error', finish);
    req.on('aborted', finish);
  });
}

function headerMap(req) {
  // Lower-case names; pseudo-headers (:method, :path, :authority, :scheme)
  // are kept for HTTP/2 requests; authorization is never logged.
  const out = {};
  for (const [name, value] of Object.entries(req.headers)) {
    const n = name.toLowerCase();
    if (n === 'authorization') continue;
    out[n] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

// How many times each header name appears in the request as sent.
function headerCounts(req) {
  const counts = {};
  const raw = req.rawHeaders || [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = String(raw[i]).toLowerCase();
    counts[n] = (counts[n] || 0) + 1;
  }
  return counts;
}

function authority(req) {
  return req.headers[':authority'] || req.headers.host || '';
}

function send(res, status, headers, body) {
  const h = { ...headers };
  let payload = '';
  if (body !== undefined && body !== null) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    h['content-type'] = h['content-type'] || 'application/json; charset=utf-8';
  }
  h['content-length'] = Buffer.byteLength(payload);
  try {
    res.writeHead(status, h);
    res.end(payload);
  } catch (e) {
    // The client went away; nothing to do.
  }
}

function isInt(v) {
  return typeof v === 'number' && Number.isInteger(v);
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const B64URL = /^[A-Za-z0-9_-]+$/;

// Splits a compact JWS and decodes its header and claims. Returns
// {header, claims, signingInput, sig} or {error}.
function parseJwt(jwt) {
  const parts = jwt.split('.');
  if (parts.length !== 3) return { error: 'JWT must have 3 parts' };
  if (!parts.every((p) => B64URL.test(p))) return { error: 'JWT parts must be base64url without padding' };
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch (e) {
    return { error: 'JWT header or claims are not JSON' };
  }
  if (!isPlainObject(header) || !isPlainObject(claims)) return { error: 'JWT header and claims must be JSON objects' };
  return {
    header,
    claims,
    signingInput: Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'),
    sig: Buffer.from(parts[2], 'base64url'),
  };
}

function logRequest(entry) {
  state.log.push(entry);
}

// First scripted rule for this provider (and device token, if the rule names
// one) with times left; consumes one use.
function takeRule(provider, token) {
  for (const r of state.rules) {
    if (r.provider !== provider || r.times <= 0) continue;
    if (r.token !== undefined && r.token !== token) continue;
    r.times -= 1;
    return r;
  }
  return null;
}

// ---------------------------------------------------------------- APNs

// [APNS-SEND] apns-push-type values.
const APNS_PUSH_TYPES = ['alert', 'background', 'voip', 'location',
  'complication', 'fileprovider', 'mdm', 'liveactivity', 'pushtotalk'];
// [APNS-SEND] push types whose apns-topic must be the bundle ID plus a suffix.
const APNS_TOPIC_SUFFIX = {
  voip: '.voip',
  complication: '.complication',
  fileprovider: '.pushkit.fileprovider',
  location: '.location-query',
  liveactivity: '.push-type.liveactivity',
  pushtotalk: '.voip-ptt',
};
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

// Checks an APNs provider token [APNS-TOKEN]. Returns {jwt, iat} or
// {status, reason, iat}.
function checkApnsAuth(req) {
  const auth = req.headers.authorization;
  // [APNS-RESP] 403 MissingProviderToken: no provider certificate and no token.
  if (auth === undefined || auth === '') return { status: 403, reason: 'MissingProviderToken', iat: null };
  const m = /^bearer (\S+)$/i.exec(String(auth));
  if (!m) return { status: 403, reason: 'InvalidProviderToken', iat: null };
  const jwt = m[1];
  const p = parseJwt(jwt);
  if (p.error) return { status: 403, reason: 'InvalidProviderToken', iat: null };
  const iat = isInt(p.claims.iat) ? p.claims.iat : null;
  const bad = { status: 403, reason: 'InvalidProviderToken', iat };
  // [APNS-TOKEN] header: alg ES256 and kid = the 10-character key ID.
  if (p.header.alg !== 'ES256' || p.header.kid !== APNS_KEY_ID) return bad;
  // [APNS-TOKEN] claims: iss = team ID, iat = seconds since epoch.
  if (p.claims.iss !== APNS_TEAM_ID || iat === null) return bad;
  // ES256 signature: raw 64-byte r||s (JWS, RFC 7518 section 3.4), not DER.
  if (p.sig.length !== 64) return bad;
  let ok = false;
  try {
    ok = crypto.verify('sha256', p.signingInput,
      { key: apnsKey, dsaEncoding: 'ieee-p1363' }, p.sig);
  } catch (e) {
    ok = false;
  }
  if (!ok) return bad;
  const now = nowS();
  // [APNS-TOKEN] APNs rejects tokens older than one hour: 403 ExpiredProviderToken.
  if (now - iat > 3600) return { status: 403, reason: 'ExpiredProviderToken', iat };
  // A token issued in the future (beyond 60 s of clock skew) is not valid.
  if (iat - now > 60) return bad;
  return { jwt, iat };
}

async function handleApns(req, res, token) {
  // Logged on arrival (status 0 until answered), so the log keeps arrival
  // order even when HTTP/2 streams are answered out of order.
  const entry = {
    provider: 'apns', path: req.url, headers: headerMap(req),
    body: '', status: 0, reason: null, time_ms: nowMs(), jwt_iat: null,
  };
  logRequest(entry);
  const body = await readBody(req);
  entry.body = body.toString('utf8');
  const sentId = req.headers['apns-id'];
  // [APNS-RESP] every answer carries apns-id: the request's, or a new UUID.
  const apnsId = (typeof sentId === 'string' && UUID_RE.test(sentId)) ? sentId : crypto.randomUUID();
  const answer = (status, reason, extra = {}) => {
    entry.status = status;
    entry.reason = reason;
    const headers = { 'apns-id': apnsId, ...(extra.headers || {}) };
    if (reason === null) return send(res, status, headers);
    const json = { reason };
    // [APNS-RESP] 410 answers carry the time (ms) the token became invalid.
    if (status === 410) json.timestamp = extra.timestamp !== undefined ? extra.timestamp : nowMs();
    if (status === 403 && reason === 'ExpiredProviderToken') state.apnsToldExpired = true;
    return send(res, status, headers, json);
  };

  // The provider API is HTTP/2 only [APNS-SEND].
  if (req.httpVersion !== '2.0') {
    return answer(505, 'mock: APNs requires HTTP/2, got HTTP/' + req.httpVersion);
  }
  // [APNS-RESP] 405 MethodNotAllowed: :method is not POST.
  if (req.method !== 'POST') return answer(405, 'MethodNotAllowed');

  // 1. Provider token.
  const auth = checkApnsAuth(req);
  entry.jwt_iat = auth.iat;
  if (auth.status) return answer(auth.status, auth.reason);

  // 2. Token rotation [APNS-TOKEN]: "Refresh your token no more than once
  // every 20 minutes"; [APNS-RESP] 429 TooManyProviderTokenUpdates. A client
  // that was told ExpiredProviderToken may always present a new one.
  if (auth.jwt !== state.apnsLastJwt) {
    if (state.apnsLastJwt !== null && !state.apnsToldExpired &&
        auth.iat - state.apnsLastIat < APNS_MIN_ROTATION_S) {
      return answer(429, 'TooManyProviderTokenUpdates');
    }
    state.apnsLastJwt = auth.jwt;
    state.apnsLastIat = auth.iat;
    state.apnsToldExpired = false;
    state.jwtsSeen.add(auth.jwt);
  }

  // 3. Device token: [APNS-RESP] 400 MissingDeviceToken / BadDeviceToken.
  if (token === '') return answer(400, 'MissingDeviceToken');
  if (!/^[0-9a-fA-F]{64}$/.test(token)) return answer(400, 'BadDeviceToken');

  // [APNS-RESP] 400 DuplicateHeaders: one or more headers are repeated.
  const counts = headerCounts(req);
  for (const [name, n] of Object.entries(counts)) {
    if (name.startsWith('apns-') && n > 1) return answer(400, 'DuplicateHeaders');
  }

  // 4. Topic and push type [APNS-SEND]: with token-based authentication the
  // apns-topic header is required; apns-push-type must be a known value.
  const topic = req.headers['apns-topic'];
  if (typeof topic !== 'string' || topic === '') return answer(400, 'MissingTopic');
  const pushType = req.headers['apns-push-type'];
  if (!APNS_PUSH_TYPES.includes(pushType)) return answer(400, 'InvalidPushType');
  // [APNS-SEND] e.g. voip: "the apns-topic ... must use your app's bundle ID
  // with .voip appended to the end".
  const suffix = APNS_TOPIC_SUFFIX[pushType];
  if (suffix && !(topic.endsWith(suffix) && topic.length > suffix.length)) {
    return answer(400, 'TopicDisallowed');
  }

  // 5. Priority [APNS-SEND]: 10 (the default when omitted), 5, or 1;
  // background pushes must use 5.
  const prioHeader = req.headers['apns-priority'];
  if (prioHeader !== undefined && !['1', '5', '10'].includes(prioHeader)) {
    return answer(400, 'BadPriority');
  }
  const priority = prioHeader === undefined ? '10' : prioHeader;
  if (pushType === 'background' && priority !== '5') return answer(400, 'BadPriority');

  // 6. apns-expiration: a UNIX epoch date in seconds (0 = do not store);
  // apns-collapse-id: at most 64 bytes; apns-id: a canonical UUID [APNS-SEND].
  const exp = req.headers['apns-expiration'];
  if (exp !== undefined && !/^\d+$/.test(exp)) return answer(400, 'BadExpirationDate');
  const collapse = req.headers['apns-collapse-id'];
  if (collapse !== undefined && Buffer.byteLength(collapse) > 64) return answer(400, 'BadCollapseId');
  if (sentId !== undefined && !UUID_RE.test(sentId)) return answer(400, 'BadMessageId');

  // 7. Payload [APNS-PAYLOAD]: at most 4096 bytes, 5120 for VoIP.
  if (body.length === 0) return answer(400, 'PayloadEmpty');
  const limit = pushType === 'voip' ? 5120 : 4096;
  if (body.length > limit) return answer(413, 'PayloadTooLarge');
  let payload;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return answer(400, 'BadPayload');   // the mock's own reason: not JSON
  }
  if (!isPlainObject(payload) || !isPlainObject(payload.aps)) return answer(400, 'BadPayload');
  // Background updates: aps holds content-available: 1 and no alert, sound
  // or badge ("Pushing background updates to your App").
  if (pushType === 'background') {
    const aps = payload.aps;
    if (aps['content-available'] !== 1 || 'alert' in aps || 'sound' in aps || 'badge' in aps) {
      return answer(400, 'BadPayload');
    }
  }

  // 8. Scripted answers, then success: 200 with an empty body [APNS-RESP].
  const rule = takeRule('apns', token);
  if (rule && rule.status !== 200) {
    const headers = {};
    if (rule.retry_after !== undefined) headers['retry-after'] = String(rule.retry_after);
    return answer(rule.status, rule.reason, { headers, timestamp: rule.timestamp_ms });
  }
  return answer(200, null);
}

// ---------------------------------------------------------------- FCM OAuth

// [FCM-OAUTH] the JWT bearer grant, RFC 7523. Errors are RFC 6749 section 5.2.
async function handleOAuth(req, res) {
  // Logged on arrival (status 0 until answered), so the log keeps arrival
  // order even when HTTP/2 streams are answered out of order.
  const entry = {
    provider: 'oauth', path: req.url, headers: headerMap(req),
    body: '', status: 0, reason: null, time_ms: nowMs(), jwt_iat: null,
  };
  logRequest(entry);
  const body = await readBody(req);
  entry.body = body.toString('utf8');
  const fail = (error, description) => {
    entry.status = 400;
    entry.reason = error;
    send(res, 400, { 'cache-control': 'no-store' }, { error, error_description: description });
  };

  if (req.method !== 'POST') return fail('invalid_request', 'token endpoint takes POST');
  const ctype = String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (ctype !== 'application/x-www-form-urlencoded') {
    return fail('invalid_request', 'content-type must be application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams(body.toString('utf8'));
  const grant = form.get('grant_type');
  if (grant !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    return fail('unsupported_grant_type', `Invalid grant_type: ${grant === null ? '' : grant}`);
  }
  const assertion = form.get('assertion');
  if (!assertion) return fail('invalid_request', 'Missing required parameter: assertion');
  const p = parseJwt(assertion);
  if (p.error) return fail('invalid_grant', `Invalid JWT: ${p.error}`);
  const { header, claims } = p;
  if (isInt(claims.iat)) entry.jwt_iat = claims.iat;

  // [FCM-OAUTH] header {"alg":"RS256","typ":"JWT"}; kid is optional.
  if (header.alg !== 'RS256') return fail('invalid_grant', 'Invalid JWT: alg must be RS256');
  if (header.typ !== undefined && header.typ !== 'JWT') return fail('invalid_grant', 'Invalid JWT: typ must be JWT');
  let ok = false;
  try {
    ok = crypto.verify('sha256', p.signingInput, fcmKey, p.sig);   // PKCS#1 v1.5
  } catch (e) {
    ok = false;
  }
  if (!ok) return fail('invalid_grant', 'Invalid JWT Signature.');

  // [FCM-OAUTH] claims: iss = service account email, scope (space-delimited),
  // aud = the token endpoint, iat/exp in seconds, exp at most one hour after iat.
  if (claims.iss !== FCM_EMAIL) return fail('invalid_grant', 'Invalid JWT: iss is not the service account');
  const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
  if (!scopes.includes(FCM_SCOPE)) return fail('invalid_grant', `Invalid JWT: scope must include ${FCM_SCOPE}`);
  const port = server.address().port;
  const auds = [`https://${authority(req)}/token`];
  if (FCM_TOKEN_AUD) auds.push(FCM_TOKEN_AUD);
  else auds.push(`https://127.0.0.1:${port}/token`, `https://localhost:${port}/token`);
  const audList = [...new Set(auds)].join(', ');
  if (!auds.includes(claims.aud)) return fail('invalid_grant', `Invalid JWT: aud must be one of ${audList}`);
  if (!isInt(claims.iat) || !isInt(claims.exp)) return fail('invalid_grant', 'Invalid JWT: iat and exp must be integers');
  const now = nowS();
  if (claims.exp <= now) return fail('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  if (claims.exp <= claims.iat || claims.exp - claims.iat > 3600) {
    return fail('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  }
  if (claims.iat - now > 60) return fail('invalid_grant', 'Invalid JWT: iat is in the future');

  const accessToken = 'ya29.' + crypto.randomBytes(32).toString('base64url');
  const ttl = state.fcmTokenTtl;
  fcmAccessTokens.set(accessToken, nowMs() + ttl * 1000);
  state.oauthTokensIssued += 1;
  entry.status = 200;
  send(res, 200, { 'cache-control': 'no-store' },
    { access_token: accessToken, expires_in: ttl, token_type: 'Bearer' });
}

// ---------------------------------------------------------------- FCM send

// google.rpc.Code names for the HTTP statuses FCM answers with [FCM-ERR].
const GOOGLE_STATUS = {
  400: ['INVALID_ARGUMENT', 'Request contains an invalid argument.'],
  401: ['UNAUTHENTICATED', 'Request had invalid authentication credentials.'],
  403: ['PERMISSION_DENIED', 'The caller does not have permission'],
  404: ['NOT_FOUND', 'Requested entity was not found.'],
  405: ['INVALID_ARGUMENT', 'Method not allowed.'],
  429: ['RESOURCE_EXHAUSTED', 'Quota exceeded.'],
  500: ['INTERNAL', 'Internal error encountered.'],
  503: ['UNAVAILABLE', 'The service is currently unavailable.'],
};

function googleStatus(code) {
  return GOOGLE_STATUS[code] || [code >= 500 ? 'INTERNAL' : 'UNKNOWN', 'Error.'];
}

// [FCM-SEND] Message fields (proto names; the JSON mapping also accepts
// lowerCamelCase, so both spellings are known).
const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const MESSAGE_FIELDS = ['name', 'data', 'notification', 'android', 'webpush',
  'apns', 'fcm_options', 'token', 'topic', 'condition'];
const ANDROID_FIELDS = ['collapse_key', 'priority', 'ttl', 'restricted_package_name',
  'data', 'notification', 'fcm_options', 'direct_boot_ok', 'bandwidth_constrained_ok',
  'restricted_satellite_ok'];
const REQUEST_FIELDS = ['message', 'validate_only'];
function unknownField(obj, known) {
  const ok = new Set(known.flatMap((f) => [f, camel(f)]));
  return Object.keys(obj).find((k) => !ok.has(k));
}
function field(obj, name) {
  return obj[name] !== undefined ? obj[name] : obj[camel(name)];
}

// Validates a messages:send request body. Returns null or an error message.
function checkFcmMessage(req) {
  if (!isPlainObject(req)) return 'Invalid JSON payload received. Expected an object.';
  let u = unknownField(req, REQUEST_FIELDS);
  if (u) return `Invalid JSON payload received. Unknown name "${u}": Cannot find field.`;
  const msg = req.message;
  if (!isPlainObject(msg)) return 'Request must contain a message.';
  u = unknownField(msg, MESSAGE_FIELDS);
  if (u) return `Invalid JSON payload received. Unknown name "${u}" at 'message': Cannot find field.`;
  // The mock only supports sending to a registration token.
  if (typeof msg.token !== 'string' || msg.token === '') return 'Recipient of the message is not set.';
  if (msg.topic !== undefined || msg.condition !== undefined) return 'Exactly one of token, topic or condition must be set.';
  let dataBytes = 0;
  if (msg.data !== undefined) {
    if (!isPlainObject(msg.data)) return "Invalid value at 'message.data': expected a map of strings.";
    for (const [k, v] of Object.entries(msg.data)) {
      if (typeof v !== 'string') return `Invalid value at 'message.data[${k}].value' (TYPE_STRING)`;
      // [FCM-SEND] data keys must not be reserved words ("from",
      // "message_type", or any word starting with "google" or "gcm").
      if (k === 'from' || k === 'message_type' || /^(google|gcm)/i.test(k)) {
        return `Invalid data payload key: ${k}`;
      }
      dataBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    }
  }
  // [FCM-SEND] a message's payload is limited to 4096 bytes.
  if (dataBytes > 4096) return 'Message is too big';
  if (msg.android !== undefined) {
    const a = msg.android;
    if (!isPlainObject(a)) return "Invalid value at 'message.android'";
    u = unknownField(a, ANDROID_FIELDS);
    if (u) return `Invalid JSON payload received. Unknown name "${u}" at 'message.android': Cannot find field.`;
    // AndroidMessagePriority: NORMAL or HIGH (Google's own examples write
    // them in lower case, which the API accepts).
    if (a.priority !== undefined &&
        !(typeof a.priority === 'string' && ['NORMAL', 'HIGH'].includes(a.priority.toUpperCase()))) {
      return `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "${a.priority}"`;
    }
    // ttl is a google.protobuf.Duration in JSON: seconds with an "s" suffix,
    // up to 9 fractional digits; FCM's maximum is 4 weeks.
    if (a.ttl !== undefined) {
      if (typeof a.ttl !== 'string' || !/^\d+(\.\d{1,9})?s$/.test(a.ttl)) {
        return `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), Illegal duration format`;
      }
      if (parseFloat(a.ttl) > 2419200) return 'The ttl must not exceed 4 weeks (2419200s).';
    }
    const ck = field(a, 'collapse_key');
    if (ck !== undefined && typeof ck !== 'string') return "Invalid value at 'message.android.collapse_key' (TYPE_STRING)";
  }
  for (const k of ['apns', 'notification', 'webpush']) {
    if (msg[k] !== undefined && !isPlainObject(msg[k])) return `Invalid value at 'message.${k}'`;
  }
  return null;
}

async function handleFcmSend(req, res, project) {
  // Logged on arrival (status 0 until answered), so the log keeps arrival
  // order even when HTTP/2 streams are answered out of order.
  const entry = {
    provider: 'fcm', path: req.url, headers: headerMap(req),
    body: '', status: 0, reason: null, time_ms: nowMs(), jwt_iat: null,
  };
  logRequest(entry);
  const body = await readBody(req);
  entry.body = body.toString('utf8');
  // [FCM-ERR] every error answer: {"error":{code,message,status,details:[FcmError]}}.
  const fail = (code, errorCode, message, extraHeaders = {}) => {
    entry.status = code;
    entry.reason = errorCode;
    const [status, defMessage] = googleStatus(code);
    send(res, code, extraHeaders, {
      error: {
        code,
        message: message || defMessage,
        status,
        details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }],
      },
    });
  };

  if (req.httpVersion !== '2.0') {
    entry.status = 505;
    entry.reason = 'mock: FCM send requires HTTP/2';
    return send(res, 505, {}, { reason: `mock: FCM send requires HTTP/2, got HTTP/${req.httpVersion}` });
  }
  if (req.method !== 'POST') return fail(405, 'INVALID_ARGUMENT', 'Method not allowed.');

  // Access token from /token. Google answers a missing, unknown or expired
  // token with a bare UNAUTHENTICATED error (no FcmError details).
  const m = /^bearer (\S+)$/i.exec(String(req.headers.authorization || ''));
  const expiry = m ? fcmAccessTokens.get(m[1]) : undefined;
  if (expiry === undefined || nowMs() >= expiry) {
    entry.status = 401;
    entry.reason = 'UNAUTHENTICATED';
    return send(res, 401,
      { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
      { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } });
  }
  // [FCM-ERR] SENDER_ID_MISMATCH: the authenticated sender is not the
  // project the token belongs to.
  if (project !== FCM_PROJECT) {
    return fail(403, 'SENDER_ID_MISMATCH', `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`);
  }

  let parsed;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return fail(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
  }
  const problem = checkFcmMessage(parsed);
  if (problem) return fail(400, 'INVALID_ARGUMENT', problem);

  // validate_only: checked, not sent; Google answers with a fake id.
  if (field(parsed, 'validate_only') === true) {
    entry.status = 200;
    return send(res, 200, {}, { name: `projects/${FCM_PROJECT}/messages/fake_message_id` });
  }

  const rule = takeRule('fcm', parsed.message.token);
  if (rule && rule.status !== 200) {
    const headers = {};
    if (rule.retry_after !== undefined) headers['retry-after'] = String(rule.retry_after);
    return fail(rule.status, rule.reason, undefined, headers);
  }
  entry.status = 200;
  const id = `0:${nowMs()}%${crypto.randomBytes(8).toString('hex')}`;
  send(res, 200, {}, { name: `projects/${FCM_PROJECT}/messages/${id}` });
}

// ---------------------------------------------------------------- control

function checkRule(r) {
  if (!isPlainObject(r)) return 'a rule must be an object';
  for (const k of Object.keys(r)) {
    if (!['provider', 'token', 'status', 'reason', 'retry_after', 'timestamp_ms', 'times'].includes(k)) {
      return `unknown rule field ${k}`;
    }
  }
  if (r.provider !== 'apns' && r.provider !== 'fcm') return 'provider must be "apns" or "fcm"';
  if (r.token !== undefined && typeof r.token !== 'string') return 'token must be a string';
  if (!isInt(r.status) || r.status < 200 || r.status > 599) return 'status must be an HTTP status';
  if (r.status !== 200 && (typeof r.reason !== 'string' || r.reason === '')) return 'reason is required';
  if (r.retry_after !== undefined && !(isInt(r.retry_after) && r.retry_after >= 0)) return 'retry_after must be an integer >= 0';
  if (r.timestamp_ms !== undefined && !isInt(r.timestamp_ms)) return 'timestamp_ms must be an integer';
  if (r.times !== undefined && !(isInt(r.times) && r.times >= 1)) return 'times must be an integer >= 1';
  return null;
}

async function handleControl(req, res, what) {
  const body = await readBody(req);
  const bad = (msg) => send(res, 400, {}, { error: msg });
  const parseJson = () => {
    if (body.length === 0) return {};
    try {
      return JSON.parse(body.toString('utf8'));
    } catch (e) {
      return undefined;
    }
  };

  if (what === 'log') {
    if (req.method !== 'GET') return send(res, 405, {}, { error: 'GET only' });
    return send(res, 200, {}, {
      requests: state.log,
      jwts_seen: state.jwtsSeen.size,
      oauth_tokens_issued: state.oauthTokensIssued,
    });
  }
  if (req.method !== 'POST') return send(res, 405, {}, { error: 'POST only' });
  const json = parseJson();
  if (json === undefined) return bad('body is not JSON');

  if (what === 'script') {
    if (!isPlainObject(json) || !Array.isArray(json.rules)) return bad('body must be {"rules":[...]}');
    for (const r of json.rules) {
      const problem = checkRule(r);
      if (problem) return bad(problem);
    }
    for (const r of json.rules) state.rules.push({ ...r, times: r.times === undefined ? 1 : r.times });
    return send(res, 200, {}, { rules: state.rules.length });
  }
  if (what === 'reset') {
    state = freshState();
    return send(res, 200, {}, { ok: true });
  }
  if (what === 'config') {
    if (!isPlainObject(json)) return bad('body must be an object');
    for (const [k, v] of Object.entries(json)) {
      if (k === 'fcm_token_ttl') {
        if (!isInt(v) || v < 0) return bad('fcm_token_ttl must be an integer >= 0');
      } else {
        return bad(`unknown config key ${k}`);
      }
    }
    if (json.fcm_token_ttl !== undefined) state.fcmTokenTtl = json.fcm_token_ttl;
    return send(res, 200, {}, { fcm_token_ttl: state.fcmTokenTtl });
  }
  if (what === 'revoke') {
    const n = fcmAccessTokens.size;
    fcmAccessTokens.clear();
    return send(res, 200, {}, { revoked: n });
  }
  return send(res, 404, {}, { error: `no control endpoint ${what}` });
}

// ---------------------------------------------------------------- routing

function route(req, res) {
  const path = req.url.split('?')[0];
  let m;
  if ((m = /^\/control\/([a-z]+)$/.exec(path))) return handleControl(req, res, m[1]);
  if ((m = /^\/3\/device\/([^/]*)$/.exec(path))) return handleApns(req, res, m[1]);
  if (path === '/token') return handleOAuth(req, res);
  if ((m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(path))) return handleFcmSend(req, res, m[1]);
  // Anything else: [APNS-RESP] 404 BadPath under /3/, Google's 404 otherwise.
  const provider = path.startsWith('/3/') ? 'apns' : path.startsWith('/v1/') ? 'fcm' : 'unknown';
  const entry = {
    provider, path: req.url, headers: headerMap(req), body: '',
    status: 404, reason: provider === 'apns' ? 'BadPath' : 'NOT_FOUND', time_ms: nowMs(), jwt_iat: null,
  };
  logRequest(entry);
  return readBody(req).then((body) => {
    entry.body = body.toString('utf8');
    if (provider === 'apns') return send(res, 404, { 'apns-id': crypto.randomUUID() }, { reason: 'BadPath' });
    return send(res, 404, {}, { error: { code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND' } });
  });
}

const server = http2.createSecureServer({
  cert: fs.readFileSync(opts.cert),
  key: fs.readFileSync(opts.key),
  allowHTTP1: true,
  maxSessionMemory: 256, // MiB: a push burst keeps hundreds of streams open on one connection
  settings: { maxConcurrentStreams: 1000 }, // what APNs advertises
});

server.on('request', (req, res) => {
  Promise.resolve(route(req, res)).catch((e) => {
    process.stderr.write(`providers.mjs: ${e.stack || e}\n`);
    send(res, 500, {}, { error: 'mock internal error' });
  });
});
// A client that fails the handshake or drops a stream is not the mock's problem.
server.on('tlsClientError', () => {});
if (process.env.PROVIDERS_DEBUG) {
  server.on('session', (session) => {
    let streams = 0;
    session.on('stream', () => { streams++; });
    session.on('error', (e) => process.stderr.write(`providers.mjs: session error after ${streams} streams: ${e.code} ${e.message}\n`));
    session.on('frameError', (type, code, id) => process.stderr.write(`providers.mjs: frame error type ${type} code ${code} stream ${id}\n`));
    session.on('goaway', (code) => process.stderr.write(`providers.mjs: goaway from client ${code}\n`));
    session.on('close', () => process.stderr.write(`providers.mjs: session closed after ${streams} streams\n`));
  });
}
server.on('sessionError', (e) => { if (process.env.PROVIDERS_DEBUG) process.stderr.write('providers.mjs: session error: ' + (e.stack || e) + '\n'); });
server.on('error', (e) => {
  process.stderr.write(`providers.mjs: ${e.message}\n`);
  process.exit(1);
});

server.listen(Number(opts.port), opts.host, () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});

function shutdown() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
