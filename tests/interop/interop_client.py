#!/usr/bin/python3
"""gRPC interop test client on python3-grpcio (Debian's package).

Implements the cases of the gRPC project's interop-test-descriptions.md that
Parley must pass, with the standard client flags (--server_host,
--server_port, --test_case, --use_tls, --use_test_ca, --server_host_override).
--test_case takes a comma-separated list or "all". Message classes come from
our copy of the interop protos, compiled with protoc at start-up (--protos).
"""
import argparse
import importlib.util
import os
import queue
import subprocess
import sys
import tempfile
import threading

import grpc

CASES = [
    "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
    "custom_metadata", "status_code_and_message", "special_status_message", "unimplemented_method",
    "unimplemented_service", "cancel_after_begin", "cancel_after_first_response", "timeout_on_sleeping_server",
    # beyond the 14 required: gzip requests (grpcio cannot show response flags)
    "client_compressed_unary", "client_compressed_streaming",
]

SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")


class Failure(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failure(what)


def load_messages(proto_dir):
    out = tempfile.mkdtemp(prefix="parley-interop-py-")
    files = ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]
    subprocess.run(["protoc", "-I" + proto_dir, "--python_out=" + out] + files, check=True)
    # The generated modules live in package "grpc.testing", which would shadow
    # grpcio's own "grpc"; load them by path under private names instead.
    mods = {}
    for name in ("empty", "messages"):
        path = os.path.join(out, "grpc", "testing", name + "_pb2.py")
        spec = importlib.util.spec_from_file_location("grpc.testing." + name + "_pb2", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        mods[name] = mod
    return mods["empty"], mods["messages"]


class Stubs:
    def __init__(self, channel, empty, msgs):
        svc = "/grpc.testing.TestService/"
        self.m = msgs
        self.empty = empty

        def uu(path, req, resp):
            return channel.unary_unary(path, request_serializer=req.SerializeToString,
                                       response_deserializer=resp.FromString)

        self.EmptyCall = uu(svc + "EmptyCall", empty.Empty, empty.Empty)
        self.UnaryCall = uu(svc + "UnaryCall", msgs.SimpleRequest, msgs.SimpleResponse)
        self.UnimplementedCall = uu(svc + "UnimplementedCall", empty.Empty, empty.Empty)
        self.UnimplementedService = uu("/grpc.testing.UnimplementedService/UnimplementedCall", empty.Empty,
                                       empty.Empty)
        self.StreamingOutputCall = channel.unary_stream(
            svc + "StreamingOutputCall", request_serializer=msgs.StreamingOutputCallRequest.SerializeToString,
            response_deserializer=msgs.StreamingOutputCallResponse.FromString)
        self.StreamingInputCall = channel.stream_unary(
            svc + "StreamingInputCall", request_serializer=msgs.StreamingInputCallRequest.SerializeToString,
            response_deserializer=msgs.StreamingInputCallResponse.FromString)
        self.FullDuplexCall = channel.stream_stream(
            svc + "FullDuplexCall", request_serializer=msgs.StreamingOutputCallRequest.SerializeToString,
            response_deserializer=msgs.StreamingOutputCallResponse.FromString)


class Pipe:
    """A request iterator fed from the test, for ping-pong style calls."""
    _END = object()

    def __init__(self):
        self.q = queue.Queue()

    def send(self, msg):
        self.q.put(msg)

    def close(self):
        self.q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.q.get()
        if item is self._END:
            raise StopIteration
        return item


def zeros(n):
    return b"\0" * n


def duplex_request(m, size, body):
    return m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=size)],
                                        payload=m.Payload(body=zeros(body)))


def empty_unary(s):
    resp = s.EmptyCall(s.empty.Empty(), timeout=10)
    expect(resp is not None and resp.ByteSize() == 0, "EmptyCall returned a non-empty message")


def large_unary(s):
    m = s.m
    resp = s.UnaryCall(m.SimpleRequest(response_type=m.COMPRESSABLE, response_size=314159,
                                       payload=m.Payload(body=zeros(271828))), timeout=10)
    expect(len(resp.payload.body) == 314159, "payload is %d bytes, want 314159" % len(resp.payload.body))
    expect(resp.payload.body == zeros(314159), "payload is not all zeros")


def client_streaming(s):
    m = s.m
    reqs = [m.StreamingInputCallRequest(payload=m.Payload(body=zeros(n))) for n in (27182, 8, 1828, 45904)]
    resp = s.StreamingInputCall(iter(reqs), timeout=10)
    expect(resp.aggregated_payload_size == 74922, "aggregated %d, want 74922" % resp.aggregated_payload_size)


def server_streaming(s):
    m = s.m
    sizes = [31415, 9, 2653, 58979]
    req = m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=n) for n in sizes])
    got = [len(r.payload.body) for r in s.StreamingOutputCall(req, timeout=10)]
    expect(got == sizes, "response sizes %s, want %s" % (got, sizes))


def ping_pong(s):
    m = s.m
    pipe = Pipe()
    call = s.FullDuplexCall(pipe, timeout=10)
    for size, body in ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)):
        pipe.send(duplex_request(m, size, body))
        resp = next(call)
        expect(len(resp.payload.body) == size, "response %d bytes, want %d" % (len(resp.payload.body), size))
    pipe.close()
    rest = list(call)
    expect(not rest, "%d extra responses" % len(rest))
    expect(call.code() == grpc.StatusCode.OK, "status %s" % call.code())


def empty_stream(s):
    call = s.FullDuplexCall(iter([]), timeout=10)
    got = list(call)
    expect(not got, "%d responses to an empty stream" % len(got))
    expect(call.code() == grpc.StatusCode.OK, "status %s" % call.code())


def check_echoed(initial, trailing):
    expect(ECHO_INITIAL in list(initial), "initial metadata %s lacks %s" % (initial, ECHO_INITIAL))
    expect(ECHO_TRAILING in list(trailing), "trailing metadata %s lacks %s" % (trailing, ECHO_TRAILING))


def custom_metadata(s):
    m = s.m
    md = [ECHO_INITIAL, ECHO_TRAILING]
    _, call = s.UnaryCall.with_call(m.SimpleRequest(response_size=314159, payload=m.Payload(body=zeros(271828))),
                                    metadata=md, timeout=10)
    check_echoed(call.initial_metadata(), call.trailing_metadata())
    call = s.FullDuplexCall(iter([duplex_request(m, 314159, 271828)]), metadata=md, timeout=10)
    got = list(call)
    expect(len(got) == 1, "%d responses, want 1" % len(got))
    check_echoed(call.initial_metadata(), call.trailing_metadata())


def expect_status(fn, code, details=None):
    try:
        fn()
    except grpc.RpcError as e:
        expect(e.code() == code, "status %s, want %s (%s)" % (e.code(), code, e.details()))
        if details is not None:
            expect(e.details() == details, "message %r, want %r" % (e.details(), details))
        return
    raise Failure("call succeeded, want %s" % code)


def echo_status_cases(s, message):
    m = s.m
    status = m.EchoStatus(code=2, message=message)
    expect_status(lambda: s.UnaryCall(m.SimpleRequest(response_status=status), timeout=10),
                  grpc.StatusCode.UNKNOWN, message)
    expect_status(lambda: list(s.FullDuplexCall(iter([m.StreamingOutputCallRequest(response_status=status)]),
                                                timeout=10)), grpc.StatusCode.UNKNOWN, message)


def status_code_and_message(s):
    echo_status_cases(s, "test status message")


def special_status_message(s):
    m = s.m
    status = m.EchoStatus(code=2, message=SPECIAL_MESSAGE)
    expect_status(lambda: s.UnaryCall(m.SimpleRequest(response_status=status), timeout=10),
                  grpc.StatusCode.UNKNOWN, SPECIAL_MESSAGE)


def unimplemented_method(s):
    expect_status(lambda: s.UnimplementedCall(s.empty.Empty(), timeout=10), grpc.StatusCode.UNIMPLEMENTED)


def unimplemented_service(s):
    expect_status(lambda: s.UnimplementedService(s.empty.Empty(), timeout=10), grpc.StatusCode.UNIMPLEMENTED)


def cancel_after_begin(s):
    pipe = Pipe()
    future = s.StreamingInputCall.future(pipe, timeout=10)
    future.cancel()
    pipe.close()
    expect(future.cancelled(), "future not cancelled")
    expect(future.code() == grpc.StatusCode.CANCELLED, "status %s, want CANCELLED" % future.code())


def cancel_after_first_response(s):
    pipe = Pipe()
    call = s.FullDuplexCall(pipe, timeout=10)
    pipe.send(duplex_request(s.m, 31415, 27182))
    resp = next(call)
    expect(len(resp.payload.body) == 31415, "first response %d bytes" % len(resp.payload.body))
    call.cancel()
    pipe.close()
    expect(call.code() == grpc.StatusCode.CANCELLED, "status %s, want CANCELLED" % call.code())


def timeout_on_sleeping_server(s):
    m = s.m
    pipe = Pipe()
    call = s.FullDuplexCall(pipe, timeout=0.001)
    pipe.send(m.StreamingOutputCallRequest(payload=m.Payload(body=zeros(27182))))
    try:
        list(call)
    except grpc.RpcError:
        pass
    pipe.close()
    expect(call.code() == grpc.StatusCode.DEADLINE_EXCEEDED, "status %s, want DEADLINE_EXCEEDED" % call.code())


def client_compressed_unary(s):
    m = s.m

    def call(expect_compressed, compression):
        req = m.SimpleRequest(expect_compressed=m.BoolValue(value=expect_compressed), response_size=314159,
                              payload=m.Payload(body=zeros(271828)))
        return s.UnaryCall(req, timeout=10, compression=compression)

    expect_status(lambda: call(True, grpc.Compression.NoCompression), grpc.StatusCode.INVALID_ARGUMENT)
    resp = call(True, grpc.Compression.Gzip)
    expect(len(resp.payload.body) == 314159, "compressed request: payload %d bytes" % len(resp.payload.body))
    resp = call(False, grpc.Compression.NoCompression)
    expect(len(resp.payload.body) == 314159, "plain request: payload %d bytes" % len(resp.payload.body))


def client_compressed_streaming(s):
    m = s.m
    probe = [m.StreamingInputCallRequest(expect_compressed=m.BoolValue(value=True),
                                         payload=m.Payload(body=zeros(27182)))]
    expect_status(lambda: s.StreamingInputCall(iter(probe), timeout=10, compression=grpc.Compression.NoCompression),
                  grpc.StatusCode.INVALID_ARGUMENT)
    resp = s.StreamingInputCall(iter(probe), timeout=10, compression=grpc.Compression.Gzip)
    expect(resp.aggregated_payload_size == 27182, "aggregated %d, want 27182" % resp.aggregated_payload_size)


def make_channel(args):
    target = "%s:%d" % (args.server_host, args.server_port)
    if not args.use_tls:
        return grpc.insecure_channel(target)
    roots = open(args.ca_file, "rb").read() if args.use_test_ca else None
    options = []
    if args.server_host_override:
        options.append(("grpc.ssl_target_name_override", args.server_host_override))
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots), options)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server_host", default="127.0.0.1")
    p.add_argument("--server_port", type=int, required=True)
    p.add_argument("--test_case", default="all", help="comma-separated cases or 'all': " + ", ".join(CASES))
    p.add_argument("--use_tls", default="false", type=lambda v: v == "true")
    p.add_argument("--use_test_ca", default="false", type=lambda v: v == "true")
    p.add_argument("--server_host_override", default="")
    p.add_argument("--ca_file", default=os.path.join(here, "..", "certs", "ca.pem"))
    p.add_argument("--protos", default=os.path.join(here, "proto"))
    args = p.parse_args()

    cases = CASES if args.test_case == "all" else args.test_case.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error("unknown test case(s): " + ", ".join(unknown))
    empty, msgs = load_messages(args.protos)
    failed = 0
    with make_channel(args) as channel:
        stubs = Stubs(channel, empty, msgs)
        for case in cases:
            try:
                globals()[case](stubs)
                print("PASS python %s" % case, flush=True)
            except (Failure, grpc.RpcError) as e:
                failed += 1
                detail = "%s: %s" % (e.code(), e.details()) if isinstance(e, grpc.RpcError) else str(e)
                print("FAIL python %s: %s" % (case, detail), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
