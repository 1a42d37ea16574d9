#!/usr/bin/python3
"""cli_test.py — parleyctl against a running interop_server (gRPC's
TestService on Parley's runtime): list, describe, the four call shapes,
metadata, status errors, deadlines, input errors, exit statuses.

  cli_test.py --parleyctl BIN --port N [--tls --certs DIR]

Run under tests/harness/with_server.py, which starts the server. Exit 0 when
every case passes; the first failure is printed and exits 1.
"""
import argparse
import os
import select
import subprocess
import sys
import time

HOST_OVERRIDE = "foo.test.google.fr"


class Failure(Exception):
    pass


def check(cond, what, result=None):
    if not cond:
        detail = ""
        if result is not None:
            detail = "\n  exit %d\n  stdout: %r\n  stderr: %r" % (result.returncode, result.stdout, result.stderr)
        raise Failure(what + detail)


class Ctl:
    def __init__(self, binary, port, tls, certs):
        self.binary = binary
        self.target = "127.0.0.1:%d" % port
        self.flags = []
        if tls:
            self.flags = ["--cacert", os.path.join(certs, "ca.pem"), "--servername", HOST_OVERRIDE]

    def argv(self, *args, target=True):
        return [self.binary] + self.flags + ([self.target] if target else []) + list(args)

    def run(self, *args, stdin="", target=True, timeout=30):
        return subprocess.run(self.argv(*args, target=target), input=stdin, capture_output=True, text=True,
                              timeout=timeout)


TS = "grpc.testing.TestService"


def test_list(ctl):
    r = ctl.run("list")
    check(r.returncode == 0, "list failed", r)
    services = r.stdout.splitlines()
    check(services == sorted(services), "services not sorted", r)
    for s in ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
              "grpc.reflection.v1alpha.ServerReflection", TS]:
        check(s in services, "list misses " + s, r)

    r = ctl.run("list", TS)
    check(r.returncode == 0, "list SERVICE failed", r)
    expected = [TS + "." + m for m in ["CacheableUnaryCall", "EmptyCall", "FullDuplexCall", "HalfDuplexCall",
                                        "StreamingInputCall", "StreamingOutputCall", "UnaryCall",
                                        "UnimplementedCall"]]
    check(r.stdout.splitlines() == expected, "list SERVICE: unexpected methods", r)

    r = ctl.run("list", "grpc.testing.NoSuchService")
    check(r.returncode == 1 and "not found" in r.stderr, "list of an unknown service must fail with 1", r)


def test_describe(ctl):
    r = ctl.run("describe", TS)
    check(r.returncode == 0, "describe service failed", r)
    lines = r.stdout.splitlines()
    check(lines[0] == TS + " is a service:" and lines[1] == "service TestService {" and lines[-1] == "}",
          "describe service: header/footer", r)
    for want in ["  rpc EmptyCall ( .grpc.testing.Empty ) returns ( .grpc.testing.Empty );",
                 "  rpc StreamingOutputCall ( .grpc.testing.StreamingOutputCallRequest ) returns "
                 "( stream .grpc.testing.StreamingOutputCallResponse );",
                 "  rpc StreamingInputCall ( stream .grpc.testing.StreamingInputCallRequest ) returns "
                 "( .grpc.testing.StreamingInputCallResponse );",
                 "  rpc FullDuplexCall ( stream .grpc.testing.StreamingOutputCallRequest ) returns "
                 "( stream .grpc.testing.StreamingOutputCallResponse );"]:
        check(want in lines, "describe service misses: " + want, r)

    for name in [TS + ".UnaryCall", TS + "/UnaryCall"]:
        r = ctl.run("describe", name)
        check(r.returncode == 0 and r.stdout == (
            TS + ".UnaryCall is a method:\n"
            "rpc UnaryCall ( .grpc.testing.SimpleRequest ) returns ( .grpc.testing.SimpleResponse );\n"),
            "describe method " + name, r)

    r = ctl.run("describe", "grpc.testing.SimpleRequest")
    check(r.returncode == 0, "describe message failed", r)
    lines = r.stdout.splitlines()
    check(lines[0] == "grpc.testing.SimpleRequest is a message:" and lines[1] == "message SimpleRequest {",
          "describe message header", r)
    for want in ["  .grpc.testing.PayloadType response_type = 1;", "  int32 response_size = 2;",
                 "  .grpc.testing.Payload payload = 3;", "  .grpc.testing.EchoStatus response_status = 7;"]:
        check(want in lines, "describe message misses: " + want, r)

    r = ctl.run("describe", "grpc.testing.PayloadType")
    check(r.returncode == 0 and r.stdout == "grpc.testing.PayloadType is an enum:\nenum PayloadType {\n"
          "  COMPRESSABLE = 0;\n}\n", "describe enum", r)

    r = ctl.run("describe", "grpc.testing.SimpleRequest.response_size")
    check(r.returncode == 0 and "int32 response_size = 2;" in r.stdout, "describe field", r)

    r = ctl.run("describe", "grpc.testing.Nope")
    check(r.returncode == 1 and "grpc.testing.Nope" in r.stderr and "not found" in r.stderr,
          "describe of an unknown symbol", r)


def test_unary(ctl):
    r = ctl.run("call", TS + "/EmptyCall")  # no input: an empty request
    check(r.returncode == 0 and r.stdout == "{}\n", "EmptyCall", r)

    # payload bytes: base64 in (standard and URL-safe, padded or not), base64 out
    req = '{"responseSize": 4, "payload": {"body": "AAECAw=="}}'
    r = ctl.run("call", TS + "/UnaryCall", "-d", req)
    check(r.returncode == 0 and r.stdout == '{\n  "payload": {\n    "body": "AAAAAA=="\n  }\n}\n',
          "UnaryCall output", r)
    # proto field names on input, stdin instead of -d, grpcurl's HOST:PORT METHOD form
    r = ctl.run(TS + ".UnaryCall", stdin='{"response_size": 2, "payload": {"body": "-_8"}}\n')
    check(r.returncode == 0 and '"body": "AAA="' in r.stdout, "UnaryCall via stdin, proto names, url-safe", r)
    r = ctl.run("--compact", "call", TS + "/UnaryCall", "-d", '{"responseSize": 1}')
    check(r.returncode == 0 and r.stdout == '{"payload":{"body":"AA=="}}\n', "--compact", r)
    r = ctl.run("--emit-defaults", "--compact", "call", TS + "/UnaryCall", "-d", '{"responseSize": 1}')
    check(r.returncode == 0 and r.stdout == '{"payload":{"type":"COMPRESSABLE","body":"AA=="},"username":"",'
          '"oauthScope":"","serverId":"","grpclbRouteType":"GRPCLB_ROUTE_TYPE_UNKNOWN","hostname":""}\n',
          "--emit-defaults", r)


def test_server_streaming(ctl):
    req = '{"responseParameters": [{"size": 1}, {"size": 2}, {"size": 3}]}'
    r = ctl.run("call", TS + "/StreamingOutputCall", "-d", req)
    check(r.returncode == 0 and r.stdout == '{"payload":{"body":"AA=="}}\n{"payload":{"body":"AAA="}}\n'
          '{"payload":{"body":"AAAA"}}\n', "StreamingOutputCall", r)
    # each response printed as it arrives: the first one long before the last
    req = '{"responseParameters": [{"size": 1}, {"size": 2, "intervalUs": 3000000}]}'
    p = subprocess.Popen(ctl.argv("call", TS + "/StreamingOutputCall", "-d", req), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    first = p.stdout.readline()
    t_first = time.monotonic() - start
    rest, err = p.communicate(timeout=30)
    check(p.returncode == 0 and first == '{"payload":{"body":"AA=="}}\n' and t_first < 2.5,
          "server streaming: first response after %.2fs (%r %r %r)" % (t_first, first, rest, err))


def test_client_streaming(ctl):
    lines = '{"payload": {"body": "AAAA"}}\n{"payload": {"body": "AAAAAA=="}}\n{"payload":\n {"body": "AA=="}}\n'
    r = ctl.run("call", TS + "/StreamingInputCall", stdin=lines)
    check(r.returncode == 0 and r.stdout == '{\n  "aggregatedPayloadSize": 8\n}\n', "StreamingInputCall", r)
    r = ctl.run("call", TS + "/StreamingInputCall", stdin="")
    check(r.returncode == 0 and r.stdout == "{}\n", "StreamingInputCall without requests", r)


def test_bidi(ctl):
    lines = "".join('{"responseParameters": [{"size": %d}]}\n' % n for n in (1, 2, 3, 4))
    r = ctl.run("call", TS + "/FullDuplexCall", stdin=lines)
    check(r.returncode == 0 and r.stdout == '{"payload":{"body":"AA=="}}\n{"payload":{"body":"AAA="}}\n'
          '{"payload":{"body":"AAAA"}}\n{"payload":{"body":"AAAAAA=="}}\n', "FullDuplexCall", r)

    # interleaved: the response to the first line arrives while stdin is still open
    p = subprocess.Popen(ctl.argv("call", TS + "/FullDuplexCall"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out = []
    for n in (1, 2, 3):
        p.stdin.write('{"responseParameters": [{"size": %d}]}\n' % n)
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], 10)
        check(ready, "bidi: no response to line %d while the input stays open" % n)
        out.append(p.stdout.readline())
    p.stdin.close()
    rest, err = p.stdout.read(), p.stderr.read()
    p.wait(timeout=30)
    check(p.returncode == 0 and rest == "" and out == ['{"payload":{"body":"AA=="}}\n', '{"payload":{"body":"AAA="}}\n',
                                                        '{"payload":{"body":"AAAA"}}\n'],
          "bidi interleaving: %r %r %r" % (out, rest, err))


def test_metadata(ctl):
    r = ctl.run("-v", "-H", "x-grpc-test-echo-initial: hello there", "-H", "X-Grpc-Test-Echo-Trailing-Bin: -_8",
                "call", TS + "/UnaryCall", "-d", "{}")
    check(r.returncode == 0, "metadata echo call", r)
    headers, _, trailers = r.stderr.partition("Response trailers received:")
    check("Response headers received:" in headers and "x-grpc-test-echo-initial: hello there\n" in headers,
          "initial metadata echo", r)
    check("x-grpc-test-echo-trailing-bin: +/8=\n" in trailers, "binary trailing metadata echo", r)
    r = ctl.run("-H", "x-grpc-test-echo-trailing-bin: not base64!", "call", TS + "/EmptyCall")
    check(r.returncode == 2 and "base64" in r.stderr, "bad -bin value is a usage error", r)
    r = ctl.run("-H", "content-type: text/plain", "call", TS + "/EmptyCall")
    check(r.returncode == 2 and "reserved" in r.stderr, "reserved header is a usage error", r)


def test_status(ctl):
    req = '{"responseStatus": {"code": 2, "message": "test status message"}}'
    r = ctl.run("call", TS + "/UnaryCall", "-d", req)
    check(r.returncode == 64 + 2 and r.stdout == "" and
          r.stderr == "ERROR:\n  Code: Unknown\n  Message: test status message\n", "status error (Unknown)", r)
    r = ctl.run("call", TS + "/UnimplementedCall")
    check(r.returncode == 64 + 12 and "  Code: Unimplemented\n" in r.stderr, "Unimplemented", r)
    lines = '{"responseParameters": [{"size": 1}]}\n{"responseStatus": {"code": 9, "message": "late"}}\n'
    r = ctl.run("call", TS + "/FullDuplexCall", stdin=lines)
    check(r.returncode == 64 + 9 and r.stdout == '{"payload":{"body":"AA=="}}\n' and
          r.stderr == "ERROR:\n  Code: FailedPrecondition\n  Message: late\n", "status after a response", r)


def test_deadline(ctl):
    req = '{"responseParameters": [{"size": 1, "intervalUs": 3000000}]}'
    start = time.monotonic()
    r = ctl.run("--max-time", "0.5", "call", TS + "/StreamingOutputCall", "-d", req)
    elapsed = time.monotonic() - start
    check(r.returncode == 64 + 4 and "  Code: DeadlineExceeded\n" in r.stderr and elapsed < 2.5,
          "deadline (%.2fs)" % elapsed, r)
    r = ctl.run("--max-time", "20", "call", TS + "/EmptyCall")
    check(r.returncode == 0 and r.stdout == "{}\n", "a generous deadline", r)


def test_input_errors(ctl):
    r = ctl.run("call", TS + "/UnaryCall", "-d", '{"payload": {"bodee": "AA=="}}')
    check(r.returncode == 1 and 'unknown field "bodee"' in r.stderr and "grpc.testing.Payload" in r.stderr,
          "unknown field", r)
    r = ctl.run("call", TS + "/UnaryCall", "-d", '{"responseSize": "x"}')
    check(r.returncode == 1 and "responseSize" in r.stderr, "bad integer", r)
    r = ctl.run("call", TS + "/UnaryCall", "-d", '{"payload": {"body": "%%%"}}')
    check(r.returncode == 1 and "payload.body" in r.stderr and "base64" in r.stderr, "bad base64", r)
    r = ctl.run("call", TS + "/UnaryCall", "-d", '{"responseType": "NOPE"}')
    check(r.returncode == 1 and "NOPE" in r.stderr, "bad enum name", r)
    r = ctl.run("call", TS + "/UnaryCall", "-d", '{} {}')
    check(r.returncode == 1 and "one request" in r.stderr, "two requests for a unary method", r)
    r = ctl.run("call", TS + "/UnaryCall", "-d", '{"responseSize": ')
    check(r.returncode == 1 and "invalid JSON" in r.stderr, "truncated JSON", r)
    r = ctl.run("call", TS + "/FullDuplexCall", stdin='{"responseParameters": [{"size": 1}]}\n{"oops": 1}\n')
    check(r.returncode == 1 and 'unknown field "oops"' in r.stderr, "bad second request in a stream", r)
    r = ctl.run("call", TS + "/NoSuchMethod")
    check(r.returncode == 1 and "NoSuchMethod" in r.stderr, "unknown method", r)


def test_usage(ctl):
    r = ctl.run(target=False)
    check(r.returncode == 2, "no arguments is a usage error", r)
    r = ctl.run("--help", target=False)
    check(r.returncode == 0 and "Exit status" in r.stdout and "--protoset" in r.stdout, "--help", r)
    r = ctl.run("--bogus", "list")
    check(r.returncode == 2 and "--bogus" in r.stderr, "unknown flag", r)
    r = subprocess.run([ctl.binary, "--max-time", "5", "127.0.0.1:1", "list"], capture_output=True, text=True)
    check(r.returncode == 1 and "cannot connect" in r.stderr, "connection refused", r)


def test_tls_verification(ctl, port):
    # the test certificate is not trusted by the system's roots
    r = subprocess.run([ctl.binary, "--tls", "--servername", HOST_OVERRIDE, "127.0.0.1:%d" % port, "list"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "cannot connect" in r.stderr, "TLS without the test CA must fail", r)
    r = subprocess.run([ctl.binary, "--insecure", "127.0.0.1:%d" % port, "list"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and "grpc.testing.TestService" in r.stdout, "--insecure", r)
    # h2c against a TLS port fails cleanly
    r = subprocess.run([ctl.binary, "--max-time", "5", "127.0.0.1:%d" % port, "list"], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 1, "h2c against a TLS server must fail with 1", r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parleyctl", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--certs")
    a = ap.parse_args()
    ctl = Ctl(a.parleyctl, a.port, a.tls, a.certs)
    cases = [test_list, test_describe, test_unary, test_server_streaming, test_client_streaming, test_bidi,
             test_metadata, test_status, test_deadline, test_input_errors, test_usage]
    if a.tls:
        cases.append(lambda c: test_tls_verification(c, a.port))
    for case in cases:
        name = getattr(case, "__name__", "tls_verification")
        try:
            case(ctl)
        except Failure as e:
            print("FAIL %s: %s" % (name, e))
            return 1
        print("PASS %s" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
