#!/usr/bin/python3
"""grpcio_reflection_test.py — parleyctl against a server that is not
Parley's: python3-grpcio serving only grpc.reflection.v1alpha (so v1 answers
UNIMPLEMENTED and parleyctl must fall back), a file whose import
(google/protobuf/timestamp.proto) is sent only when asked for by name, and
an echo method on raw bytes.

  grpcio_reflection_test.py --parleyctl BIN
"""
import argparse
import subprocess
import sys
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, timestamp_pb2


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def parse(data):
    """{field number: bytes} of the length-delimited fields of a message."""
    out, i = {}, 0
    while i < len(data):
        key, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        n, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out[key >> 3] = data[i:i + n]
        i += n
    return out


def echo_file():
    f = descriptor_pb2.FileDescriptorProto(name="test/echo.proto", package="test.echo", syntax="proto3",
                                           dependency=["google/protobuf/timestamp.proto"])
    m = f.message_type.add(name="Note")
    m.field.add(name="text", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="text")
    m.field.add(name="big_count", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="bigCount")
    m.field.add(name="at", number=3, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                type_name=".google.protobuf.Timestamp", label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                json_name="at")
    s = f.service.add(name="Echo")
    s.method.add(name="Say", input_type=".test.echo.Note", output_type=".test.echo.Note")
    return f.SerializeToString()


FILES = {"test/echo.proto": echo_file(),
         "google/protobuf/timestamp.proto": timestamp_pb2.DESCRIPTOR.serialized_pb}
asked = []


def reflection(request_iterator, context):
    for req in request_iterator:
        fields = parse(req)
        if 7 in fields:
            services = b"".join(field(1, field(1, name)) for name in
                                (b"test.echo.Echo", b"grpc.reflection.v1alpha.ServerReflection"))
            yield field(6, services)
        elif 4 in fields:
            asked.append("symbol " + fields[4].decode())
            if fields[4].decode().startswith("test.echo."):
                yield field(4, field(1, FILES["test/echo.proto"]))  # the dependency is not sent along
            else:
                yield field(7, varint(1 << 3) + varint(5) + field(2, b"symbol not found"))
        elif 3 in fields:
            asked.append("file " + fields[3].decode())
            yield field(4, field(1, FILES[fields[3].decode()]))


def say(request, context):
    context.set_trailing_metadata((("x-echo-len", str(len(request))),))
    return request


class Handlers(grpc.GenericRpcHandler):
    def service(self, details):
        if details.method == "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo":
            return grpc.stream_stream_rpc_method_handler(reflection)
        if details.method == "/test.echo.Echo/Say":
            return grpc.unary_unary_rpc_method_handler(say)
        return None  # everything else, grpc.reflection.v1 included: UNIMPLEMENTED


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parleyctl", required=True)
    a = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((Handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    target = "127.0.0.1:%d" % port
    failures = []

    def run(*args, stdin=""):
        return subprocess.run([a.parleyctl, target] + list(args), input=stdin, capture_output=True, text=True,
                              timeout=60)

    r = run("list")
    if r.returncode != 0 or r.stdout.split() != ["grpc.reflection.v1alpha.ServerReflection", "test.echo.Echo"]:
        failures.append("list over v1alpha: %r %r" % (r.stdout, r.stderr))
    del asked[:]
    r = run("describe", "test.echo.Note")
    if r.returncode != 0 or "  .google.protobuf.Timestamp at = 3;" not in r.stdout:
        failures.append("describe: %r %r" % (r.stdout, r.stderr))
    if asked != ["symbol test.echo.Note", "file google/protobuf/timestamp.proto"]:
        failures.append("dependency not fetched by name: %r" % asked)
    r = run("-v", "call", "test.echo.Echo/Say", "-d",
            '{"text": "hi", "big_count": 9007199254740993, "at": "2020-01-02T03:04:05.678Z"}')
    want = '{\n  "text": "hi",\n  "bigCount": "9007199254740993",\n  "at": "2020-01-02T03:04:05.678Z"\n}\n'
    if r.returncode != 0 or r.stdout != want or "x-echo-len: " not in r.stderr:
        failures.append("call: %r %r" % (r.stdout, r.stderr))
    r = run("describe", "test.echo.Missing")
    if r.returncode != 1 or "not found" not in r.stderr:
        failures.append("missing symbol: %d %r" % (r.returncode, r.stderr))
    r = run("call", "test.echo.Echo/Nope")
    if r.returncode != 1 or "no method Nope" not in r.stderr:
        failures.append("missing method: %d %r" % (r.returncode, r.stderr))
    server.stop(0)
    for f in failures:
        print("FAIL " + f)
    if not failures:
        print("PASS v1alpha fallback, dependency by file name, call on a grpcio server")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
