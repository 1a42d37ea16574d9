#!/usr/bin/env python3
"""Self-test of tests/push/providers.mjs, the APNs/FCM stand-in.

Makes a P-256 key (APNs) and an RSA-2048 key (FCM service account) with the
openssl CLI, starts the mock on a free port, drives the provider endpoints
with curl (HTTP/2, and HTTP/1.1 for the 505 check) and the control endpoints
with urllib, and checks the answers. Python stdlib + openssl + curl + node.

    python3 tests/push/providers_selftest.py      # exit 0 = pass
"""

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CERTS = os.path.join(ROOT, 'tests', 'certs')
CA = os.path.join(CERTS, 'ca.pem')

KID = 'ABC123DEFG'
TEAM = 'TEAM123456'
EMAIL = 'push@parley-test.iam.gserviceaccount.com'
PROJECT = 'parley-test'
TOPIC = 'org.parley.app'
SCOPE = 'https://www.googleapis.com/auth/firebase.messaging'
DEV = 'a' * 64
DEV2 = 'B' * 64

failures = []


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def run(args, data=None):
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


# ---------------------------------------------------------------- JWTs

def der_ecdsa_to_raw(der):
    """DER SEQUENCE{INTEGER r, INTEGER s} -> 64-byte r||s (JWS ES256)."""
    def read_len(buf, i):
        n = buf[i]
        i += 1
        if n & 0x80:
            k = n & 0x7f
            n = int.from_bytes(buf[i:i + k], 'big')
            i += k
        return n, i
    assert der[0] == 0x30
    _, i = read_len(der, 1)
    out = b''
    for _ in range(2):
        assert der[i] == 0x02
        n, i = read_len(der, i + 1)
        v = int.from_bytes(der[i:i + n], 'big')
        i += n
        out += v.to_bytes(32, 'big')
    return out


def jwt(header, claims, keyfile, es256):
    signing_input = (b64u(json.dumps(header).encode()) + '.' +
                     b64u(json.dumps(claims).encode())).encode('ascii')
    sig = run(['openssl', 'dgst', '-sha256', '-sign', keyfile], signing_input)
    if es256:
        sig = der_ecdsa_to_raw(sig)
    return signing_input.decode('ascii') + '.' + b64u(sig)


# ---------------------------------------------------------------- HTTP

def curl(port, method, path, headers=None, body=None, http='2'):
    """Returns (status, headers dict, body bytes, http version string)."""
    with tempfile.TemporaryDirectory() as d:
        hdr_file = os.path.join(d, 'h')
        out_file = os.path.join(d, 'b')
        args = ['curl', '-sS', '--cacert', CA, '-X', method, '-D', hdr_file,
                '-o', out_file, '-w', '%{http_version}',
                '--http2' if http == '2' else '--http1.1']
        for k, v in (headers or {}).items():
            args += ['-H', f'{k}: {v}']
        if body is not None:
            body_file = os.path.join(d, 'in')
            with open(body_file, 'wb') as f:
                f.write(body if isinstance(body, bytes) else body.encode())
            args += ['--data-binary', '@' + body_file]
        args.append(f'https://127.0.0.1:{port}{path}')
        version = run(args).decode().strip()
        status, hdrs = 0, {}
        with open(hdr_file) as f:
            for line in f.read().splitlines():
                if line.startswith('HTTP/'):
                    status, hdrs = int(line.split()[1]), {}
                elif ':' in line:
                    k, v = line.split(':', 1)
                    hdrs[k.strip().lower()] = v.strip()
        with open(out_file, 'rb') as f:
            data = f.read()
        return status, hdrs, data, version


def control(port, method, what, body=None):
    ctx = ssl.create_default_context(cafile=CA)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f'https://127.0.0.1:{port}/control/{what}',
                                 data=data, method=method,
                                 headers={'content-type': 'application/json'})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- tests

def main():
    tmp = tempfile.mkdtemp(prefix='push-selftest-')
    ec_key = os.path.join(tmp, 'apns.key')
    ec_pub = os.path.join(tmp, 'apns_pub.pem')
    ec_other = os.path.join(tmp, 'other.key')
    rsa_key = os.path.join(tmp, 'fcm.key')
    rsa_pub = os.path.join(tmp, 'fcm_pub.pem')
    run(['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ec_key])
    run(['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ec_other])
    run(['openssl', 'pkey', '-in', ec_key, '-pubout', '-out', ec_pub])
    run(['openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsa_key])
    run(['openssl', 'pkey', '-in', rsa_key, '-pubout', '-out', rsa_pub])

    proc = subprocess.Popen(
        ['node', os.path.join(HERE, 'providers.mjs'),
         '--cert', os.path.join(CERTS, 'server.pem'), '--key', os.path.join(CERTS, 'server.key'),
         '--apns-public-key', ec_pub, '--apns-key-id', KID, '--apns-team-id', TEAM,
         '--fcm-public-key', rsa_pub, '--fcm-client-email', EMAIL, '--fcm-project', PROJECT,
         '--port', '0'],
        stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        check(line.startswith('READY '), f'mock prints READY line ({line!r})')
        port = int(line.split()[1])
        apns_tests(port, ec_key, ec_other)
        fcm_tests(port, rsa_key)
        log_tests(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        check(rc == 0, f'mock exits 0 on SIGTERM (rc={rc})')
        subprocess.run(['rm', '-rf', tmp])

    if failures:
        print(f'\n{len(failures)} check(s) failed')
        return 1
    print('\nall checks passed')
    return 0


def apns_jwt(keyfile, iat, kid=KID, iss=TEAM, alg='ES256'):
    return jwt({'alg': alg, 'kid': kid}, {'iss': iss, 'iat': iat}, keyfile, es256=True)


def apns(port, token, jwt_str, push_type='alert', topic=TOPIC, body=None, extra=None, http='2'):
    headers = {'apns-push-type': push_type}
    if topic is not None:
        headers['apns-topic'] = topic
    if jwt_str is not None:
        headers['authorization'] = 'bearer ' + jwt_str
    headers.update(extra or {})
    if body is None:
        body = json.dumps({'aps': {'alert': 'hi'}})
    return curl(port, 'POST', f'/3/device/{token}', headers, body, http)


def reason_of(data):
    try:
        return json.loads(data).get('reason')
    except ValueError:
        return None


def apns_tests(port, ec_key, ec_other):
    now = int(time.time())
    good = apns_jwt(ec_key, now - 100)

    apns_id = str(uuid.uuid4())
    st, h, data, ver = apns(port, DEV, good, extra={'apns-id': apns_id, 'apns-priority': '10'})
    check(st == 200 and data == b'' and ver == '2', f'APNs valid ES256 JWT over HTTP/2 -> 200 empty ({st} {data!r} v{ver})')
    check(h.get('apns-id') == apns_id, 'APNs echoes apns-id')

    st, h, data, _ = apns(port, DEV, None)
    check(st == 403 and reason_of(data) == 'MissingProviderToken', f'no token -> 403 MissingProviderToken ({st} {data!r})')
    check(len(h.get('apns-id', '')) == 36, 'error answer carries a generated apns-id')

    # Same claims, signed with another key: bad signature.
    bad_sig = apns_jwt(ec_other, now - 100)
    st, _, data, _ = apns(port, DEV, bad_sig)
    check(st == 403 and reason_of(data) == 'InvalidProviderToken', f'bad signature -> 403 InvalidProviderToken ({st} {data!r})')
    st, _, data, _ = apns(port, DEV, apns_jwt(ec_key, now - 100, kid='WRONGKID00'))
    check(st == 403 and reason_of(data) == 'InvalidProviderToken', f'wrong kid -> 403 InvalidProviderToken ({st} {data!r})')
    st, _, data, _ = apns(port, DEV, apns_jwt(ec_key, now + 600))
    check(st == 403 and reason_of(data) == 'InvalidProviderToken', f'iat in the future -> 403 InvalidProviderToken ({st} {data!r})')

    # Rotation: a new JWT 50 s after the accepted one is refused...
    rotated = apns_jwt(ec_key, now - 50)
    st, _, data, _ = apns(port, DEV, rotated)
    check(st == 429 and reason_of(data) == 'TooManyProviderTokenUpdates', f'rotation within 20 min -> 429 ({st} {data!r})')
    # ...the accepted one still works...
    st, _, _, _ = apns(port, DEV, good)
    check(st == 200, f'previous JWT still accepted ({st})')
    # ...and once the mock has said ExpiredProviderToken (scripted), the new one is accepted.
    control(port, 'POST', 'script', {'rules': [{'provider': 'apns', 'status': 403, 'reason': 'ExpiredProviderToken'}]})
    st, _, data, _ = apns(port, DEV, good)
    check(st == 403 and reason_of(data) == 'ExpiredProviderToken', f'scripted 403 ExpiredProviderToken ({st} {data!r})')
    st, _, data, _ = apns(port, DEV, rotated)
    check(st == 200, f'new JWT accepted after ExpiredProviderToken ({st} {data!r})')
    # An hour-old JWT: ExpiredProviderToken by age (which also permits the next rotation).
    st, _, data, _ = apns(port, DEV, apns_jwt(ec_key, now - 3700))
    check(st == 403 and reason_of(data) == 'ExpiredProviderToken', f'old iat -> 403 ExpiredProviderToken ({st} {data!r})')
    good = apns_jwt(ec_key, now - 10)
    st, _, data, _ = apns(port, DEV, good)
    check(st == 200, f'new JWT accepted after expiry by age ({st} {data!r})')

    cases = [
        ('bad device token', dict(token='xyz'), 400, 'BadDeviceToken'),
        ('missing topic', dict(topic=None), 400, 'MissingTopic'),
        ('unknown push type', dict(push_type='weird'), 400, 'InvalidPushType'),
        ('voip topic without .voip', dict(push_type='voip'), 400, 'TopicDisallowed'),
        ('priority 7', dict(extra={'apns-priority': '7'}), 400, 'BadPriority'),
        ('background at priority 10', dict(push_type='background', extra={'apns-priority': '10'},
                                           body='{"aps":{"content-available":1}}'), 400, 'BadPriority'),
        ('background with alert', dict(push_type='background', extra={'apns-priority': '5'},
                                       body='{"aps":{"content-available":1,"alert":"x"}}'), 400, 'BadPayload'),
        ('bad expiration', dict(extra={'apns-expiration': 'soon'}), 400, 'BadExpirationDate'),
        ('long collapse id', dict(extra={'apns-collapse-id': 'c' * 65}), 400, 'BadCollapseId'),
        ('empty body', dict(body=''), 400, 'PayloadEmpty'),
        ('not JSON', dict(body='{nope'), 400, 'BadPayload'),
        ('no aps', dict(body='{"x":1}'), 400, 'BadPayload'),
        ('4097-byte payload', dict(body=json.dumps({'aps': {'alert': 'x' * 4078}})), 413, 'PayloadTooLarge'),
    ]
    for what, kw, want_st, want_reason in cases:
        kw = dict(kw)
        token = kw.pop('token', DEV)
        st, _, data, _ = apns(port, token, good, **kw)
        check(st == want_st and reason_of(data) == want_reason, f'{what} -> {want_st} {want_reason} ({st} {data!r})')
    st, _, data, _ = apns(port, DEV, good, push_type='voip', topic=TOPIC + '.voip',
                          body=json.dumps({'aps': {'alert': 'x' * 4500}}))
    check(st == 200, f'voip payload of 4.5 KB is accepted ({st} {data!r})')
    st, _, data, _ = apns(port, DEV, good, push_type='background', extra={'apns-priority': '5'},
                          body='{"aps":{"content-available":1}}')
    check(st == 200, f'background push at priority 5 -> 200 ({st} {data!r})')

    # Scripted 410 with timestamp; a validation failure does not consume it.
    control(port, 'POST', 'script', {'rules': [
        {'provider': 'apns', 'token': DEV2, 'status': 410, 'reason': 'Unregistered', 'timestamp_ms': 1700000000000},
        {'provider': 'apns', 'status': 429, 'reason': 'TooManyRequests', 'retry_after': 7, 'times': 2},
    ]})
    st, _, data, _ = apns(port, DEV2, good, topic=None)
    check(st == 400 and reason_of(data) == 'MissingTopic', f'validation first, rule not consumed ({st} {data!r})')
    st, _, data, _ = apns(port, DEV2, good)
    body = json.loads(data or b'{}')
    check(st == 410 and body == {'reason': 'Unregistered', 'timestamp': 1700000000000},
          f'scripted 410 Unregistered with timestamp ({st} {data!r})')
    for i in range(2):
        st, h, data, _ = apns(port, DEV, good)
        check(st == 429 and reason_of(data) == 'TooManyRequests' and h.get('retry-after') == '7',
              f'scripted 429 #{i + 1} with retry-after ({st} {h.get("retry-after")} {data!r})')
    st, _, _, _ = apns(port, DEV2, good)
    check(st == 200, f'rules used up -> 200 ({st})')

    st, _, data, ver = apns(port, DEV, good, http='1.1')
    check(st == 505 and ver == '1.1' and reason_of(data), f'APNs over HTTP/1.1 -> 505 ({st} v{ver} {data!r})')


def fcm_assertion(rsa_key, port, iat=None, **over):
    now = int(time.time())
    iat = now if iat is None else iat
    claims = {'iss': EMAIL, 'scope': SCOPE, 'aud': f'https://127.0.0.1:{port}/token',
              'iat': iat, 'exp': iat + 3600}
    claims.update(over)
    return jwt({'alg': 'RS256', 'typ': 'JWT'}, claims, rsa_key, es256=False)


def oauth(port, assertion, http='2'):
    form = 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=' + assertion
    st, _, data, _ = curl(port, 'POST', '/token',
                          {'content-type': 'application/x-www-form-urlencoded'}, form, http)
    return st, json.loads(data)


def fcm_send(port, access, message, project=PROJECT, http='2'):
    headers = {'content-type': 'application/json'}
    if access is not None:
        headers['authorization'] = 'Bearer ' + access
    st, h, data, ver = curl(port, 'POST', f'/v1/projects/{project}/messages:send',
                            headers, json.dumps({'message': message}), http)
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    return st, body, h


def fcm_error(body):
    try:
        e = body['error']
        return e['code'], e['status'], e['details'][0]['errorCode']
    except (KeyError, IndexError, TypeError):
        return None


def fcm_tests(port, rsa_key):
    st, tok = oauth(port, fcm_assertion(rsa_key, port))
    check(st == 200 and tok.get('access_token', '').startswith('ya29.') and tok.get('expires_in') == 3599
          and tok.get('token_type') == 'Bearer', f'OAuth RS256 assertion -> access token ({st} {tok})')
    access = tok.get('access_token')
    st, tok2 = oauth(port, fcm_assertion(rsa_key, port), http='1.1')
    check(st == 200, f'OAuth over HTTP/1.1 accepted ({st})')

    bad = fcm_assertion(rsa_key, port)
    bad = bad[:-6] + ('AAAAAA' if not bad.endswith('AAAAAA') else 'BBBBBB')
    st, body = oauth(port, bad)
    check(st == 400 and body.get('error') == 'invalid_grant', f'bad assertion signature -> invalid_grant ({st} {body})')
    st, body = oauth(port, fcm_assertion(rsa_key, port, scope='https://www.googleapis.com/auth/cloud-platform'))
    check(st == 400 and body.get('error') == 'invalid_grant', f'assertion without FCM scope -> invalid_grant ({st} {body})')
    st, body = oauth(port, fcm_assertion(rsa_key, port, aud='https://oauth2.googleapis.com/token'))
    check(st == 400 and body.get('error') == 'invalid_grant', f'assertion with foreign aud -> invalid_grant ({st} {body})')

    msg = {'token': 'fcm-device-1', 'data': {'k': 'v'},
           'android': {'priority': 'HIGH', 'ttl': '3600s', 'collapse_key': 'c'}}
    st, body, _ = fcm_send(port, access, msg)
    check(st == 200 and body.get('name', '').startswith(f'projects/{PROJECT}/messages/'),
          f'FCM send with the token -> 200 name ({st} {body})')

    st, body, _ = fcm_send(port, 'ya29.unknown', msg)
    check(st == 401 and body == {'error': {'code': 401, 'message': 'Request had invalid authentication credentials.',
                                           'status': 'UNAUTHENTICATED'}}, f'unknown access token -> 401 ({st} {body})')
    st, body, _ = fcm_send(port, access, msg, project='other-project')
    check(st == 403 and fcm_error(body) == (403, 'PERMISSION_DENIED', 'SENDER_ID_MISMATCH'),
          f'wrong project -> 403 SENDER_ID_MISMATCH ({st} {body})')
    bad_cases = [
        ('missing token', {'data': {'k': 'v'}}),
        ('non-string data', {'token': 't', 'data': {'k': 1}}),
        ('bad priority', {'token': 't', 'android': {'priority': 'URGENT'}}),
        ('bad ttl', {'token': 't', 'android': {'ttl': '3600'}}),
        ('data too big', {'token': 't', 'data': {'k': 'x' * 4096}}),
    ]
    for what, m in bad_cases:
        st, body, _ = fcm_send(port, access, m)
        check(st == 400 and fcm_error(body) == (400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'),
              f'FCM {what} -> 400 INVALID_ARGUMENT ({st} {body})')

    control(port, 'POST', 'script', {'rules': [
        {'provider': 'fcm', 'token': 'fcm-device-1', 'status': 404, 'reason': 'UNREGISTERED'},
        {'provider': 'fcm', 'status': 503, 'reason': 'UNAVAILABLE', 'retry_after': 3},
    ]})
    st, body, _ = fcm_send(port, access, msg)
    check(st == 404 and fcm_error(body) == (404, 'NOT_FOUND', 'UNREGISTERED')
          and body['error']['details'][0]['@type'] == 'type.googleapis.com/google.firebase.fcm.v1.FcmError',
          f'scripted 404 UNREGISTERED in Google shape ({st} {body})')
    st, body, h = fcm_send(port, access, dict(msg, token='fcm-device-2'))
    check(st == 503 and fcm_error(body) == (503, 'UNAVAILABLE', 'UNAVAILABLE') and h.get('retry-after') == '3',
          f'scripted 503 UNAVAILABLE with retry-after ({st} {body} {h.get("retry-after")})')

    st, body, _ = fcm_send(port, access, msg, http='1.1')
    check(st == 505, f'FCM send over HTTP/1.1 -> 505 ({st} {body})')

    # Short-lived token: expires_in from /control/config, then 401.
    control(port, 'POST', 'config', {'fcm_token_ttl': 1})
    st, tok = oauth(port, fcm_assertion(rsa_key, port))
    check(st == 200 and tok.get('expires_in') == 1, f'configured ttl -> expires_in 1 ({tok})')
    time.sleep(1.2)
    st, body, _ = fcm_send(port, tok['access_token'], msg)
    check(st == 401, f'expired access token -> 401 ({st})')
    control(port, 'POST', 'config', {'fcm_token_ttl': 3599})


def log_tests(port):
    log = control(port, 'GET', 'log')
    reqs = log['requests']
    providers = {r['provider'] for r in reqs}
    check(providers == {'apns', 'fcm', 'oauth'}, f'log has apns, fcm and oauth entries ({providers})')
    check(all('authorization' not in r['headers'] for r in reqs), 'log never shows authorization')
    statuses = [r['status'] for r in reqs]
    check(505 in statuses and 410 in statuses and 404 in statuses, 'log records the 505, 410 and 404 answers')
    first = reqs[0]
    check(first['provider'] == 'apns' and first['status'] == 200 and first['reason'] is None
          and isinstance(first['jwt_iat'], int) and first['path'] == f'/3/device/{DEV}'
          and first['headers'].get('apns-topic') == TOPIC and json.loads(first['body']) == {'aps': {'alert': 'hi'}},
          f'first log entry describes the first push ({first})')
    gone = [r for r in reqs if r['status'] == 410]
    check(gone and gone[0]['reason'] == 'Unregistered', 'log has the 410 reason')
    times = [r['time_ms'] for r in reqs]
    check(times == sorted(times), 'log is in arrival order')
    # good(now-100), rotated(now-50), good(now-10): three distinct accepted JWTs.
    check(log['jwts_seen'] == 3, f"jwts_seen == 3 ({log['jwts_seen']})")
    check(log['oauth_tokens_issued'] == 3, f"oauth_tokens_issued == 3 ({log['oauth_tokens_issued']})")
    control(port, 'POST', 'reset', {})
    log = control(port, 'GET', 'log')
    check(log == {'requests': [], 'jwts_seen': 0, 'oauth_tokens_issued': 0}, f'reset clears the log ({log})')


if __name__ == '__main__':
    sys.exit(main())
