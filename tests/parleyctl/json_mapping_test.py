#!/usr/bin/python3
"""json_mapping_test.py — parleyctl's proto3 JSON mapping, through its
`encode` and `decode` commands with --protoset (proto/edge.proto), checked
against python3-protobuf's implementation of the same mapping:

  - parleyctl encode JSON  == python Parse(JSON) as messages (binary parsed by python)
  - parleyctl decode BYTES == python MessageToJson(BYTES) as JSON values
  - golden texts where the exact form matters (field order, key order,
    number and string formats), and errors that must name the field.

  json_mapping_test.py --parleyctl BIN --protoset FILE
"""
import argparse
import json
import subprocess
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

PKG = "parley.test.edge."


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Env:
    def __init__(self, binary, protoset):
        self.binary = binary
        self.protoset = protoset
        fds = descriptor_pb2.FileDescriptorSet()
        with open(protoset, "rb") as f:
            fds.ParseFromString(f.read())
        pool = descriptor_pool.DescriptorPool()
        for fd in fds.file:
            pool.Add(fd)
        self.pool = pool

    def cls(self, name):
        return message_factory.MessageFactory(self.pool).GetPrototype(self.pool.FindMessageTypeByName(PKG + name))

    def ctl(self, *args, stdin=b""):
        return subprocess.run([self.binary, "--protoset", self.protoset] + list(args), input=stdin,
                              capture_output=True, timeout=30)

    def encode(self, name, text):
        r = self.ctl("encode", PKG + name, stdin=text.encode())
        check(r.returncode == 0, "encode %s %s failed: %s" % (name, text, r.stderr.decode()))
        return r.stdout

    def decode(self, name, data, *flags):
        r = self.ctl(*flags, "decode", PKG + name, stdin=data)
        check(r.returncode == 0, "decode %s failed: %s" % (name, r.stderr.decode()))
        return r.stdout.decode()


def round_trip(env, name, text):
    """JSON -> parleyctl binary == python's message; binary -> parleyctl JSON == python's JSON."""
    cls = env.cls(name)
    ours = env.encode(name, text)
    mine = cls()
    mine.ParseFromString(ours)
    ref = json_format.Parse(text, cls())
    same = mine.SerializeToString(deterministic=True) == ref.SerializeToString(deterministic=True)
    check(same, "encode %s: %s\n  parleyctl: %s\n  python:    %s" % (name, text, mine, ref))
    out = env.decode(name, ours)
    ref_json = json.loads(json_format.MessageToJson(ref))
    check(json.loads(out) == ref_json, "decode %s: %s\n  parleyctl: %s\n  python:    %s" %
          (name, text, out, json.dumps(ref_json)))
    # and what python encodes, parleyctl reads the same
    out2 = env.decode(name, ref.SerializeToString())
    check(json.loads(out2) == ref_json, "decode of python's bytes %s: %s" % (name, out2))
    return out


CASES = [
    ("Scalars", '{}'),
    ("Scalars", '{"i32": -2147483648, "i64": "-9223372036854775808", "u32": 4294967295, '
                '"u64": "18446744073709551615", "s32": -7, "s64": "-9000000000", "f32": 4294967295, '
                '"f64": "1", "sf32": -1, "sf64": "-2", "flt": 1.5, "dbl": 0.1, "flag": true, '
                '"text": "h\\u00e9\\"llo\\n\\u0000\\u007f\\u2028", "data": "AAEC/w==", "color": "BLUE"}'),
    ("Scalars", '{"i64": 12, "u64": 34, "sf64": -5, "f64": 6}'),           # 64-bit integers as numbers
    ("Scalars", '{"i32": "17", "u32": "5", "dbl": "2.5", "flt": "-0.25"}'),  # and numbers as strings
    ("Scalars", '{"i32": 1e3, "dbl": 1e300, "flt": 3.4e38}'),
    ("Scalars", '{"dbl": "NaN", "flt": "Infinity"}'),
    ("Scalars", '{"dbl": "-Infinity", "flt": 1e-7}'),
    ("Scalars", '{"dbl": 1e21, "flt": 123456789}'),
    ("Scalars", '{"dbl": 5e-324, "flt": 1.17549435e-38}'),
    ("Scalars", '{"color": 2}'),                                          # enum by number
    ("Scalars", '{"color": 7}'),                                          # unknown number
    ("Scalars", '{"data": "-_8"}'),                                       # url-safe, unpadded
    ("Scalars", '{"i32": 0, "text": "", "flag": false}'),                # defaults: omitted
    ("Scalars", '{"i32": null, "color": null}'),
    ("Edge", '{"scalars": {}, "inner": {"name": "a", "children": [{"count": 1}, {}]}}'),
    ("Edge", '{"packedInts": [1, -2, 300000], "packedLongs": ["-1", 2], "unpackedInts": [4, -5], '
             '"names": ["x", "", "z"], "blobs": ["", "AQ=="], "colors": ["RED", 2, "BLUE"], '
             '"inners": [{"name": "n"}, {}], "doubles": [0.5, -0, 1e-10]}'),
    ("Edge", '{"byName": {"b": 2, "a": 1, "": 0}, "byId": {"-3": "m", "10": "x", "2": ""}, '
             '"innerByLong": {"-9000000000": {"name": "big"}, "1": {}}, '
             '"colorByFlag": {"true": "RED", "false": "COLOR_UNSPECIFIED"}, '
             '"blobByU64": {"18446744073709551615": "AA=="}, "realBySint": {"-1": 1.25, "0": 0}}'),
    ("Edge", '{"choiceText": ""}'),
    ("Edge", '{"choiceNumber": "0"}'),
    ("Edge", '{"choiceInner": {}}'),
    ("Edge", '{"choiceColor": "COLOR_UNSPECIFIED"}'),
    ("Edge", '{"optI32": 0, "optText": "", "optColor": "COLOR_UNSPECIFIED", "optInner": {}}'),
    ("Edge", '{"snake_case_name": "proto name", "custom": 1}'),           # declared names accepted
    ("Edge", '{"snakeCaseName": "json name", "myCustomName": 2}'),
    ("WellKnown", '{"at": "1972-01-01T10:00:20.021Z", "took": "1.000340012s", "i32": 0, "i64": "5", '
                  '"u64": "18446744073709551615", "str": "", "raw": "AQ==", "flag": false, "dbl": 1.5, '
                  '"flt": 2.5, "u32": 7, "nothing": {}}'),
    ("WellKnown", '{"at": "2024-02-29T23:59:59Z", "took": "-0.5s", "times": ["1970-01-01T00:00:00Z", '
                  '"0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"]}'),
    ("WellKnown", '{"at": "2024-06-01T12:00:00.5+02:00", "took": "315576000000s"}'),
    ("WellKnown", '{"mask": "fooBar,a.bC,x"}'),
    ("WellKnown", '{"doc": {"a": 1, "b": [true, null, "s", {"c": {}}], "d": {}}, "anyJson": [1, "x"], '
                  '"list": [null, 2.5, [], {}], "values": {"k": null, "n": 3, "o": {"p": "q"}}}'),
    ("WellKnown", '{"anyJson": null}'),
    ("WellKnown", '{"anyJson": "text"}'),
]

GOLDEN = [
    # declaration order, JSON names, int64 as strings, sorted map keys, compact form
    ("Edge", '{"realBySint": {"5": 1, "-5": 2}, "byId": {"10": "x", "2": "y"}, "scalars": {"u64": 1, "i64": -1}}',
     '{"scalars":{"i64":"-1","u64":"1"},"byId":{"2":"y","10":"x"},"realBySint":{"-5":2,"5":1}}'),
    ("Scalars", '{"dbl": 0.1, "flt": 0.1}', '{"flt":0.1,"dbl":0.1}'),
    ("Scalars", '{"dbl": 1e21}', '{"dbl":1e+21}'),
    ("Scalars", '{"dbl": 1.5e-7}', '{"dbl":1.5e-7}'),
    ("Scalars", '{"dbl": 123456789012345680000}', '{"dbl":123456789012345680000}'),
    ("Scalars", '{"dbl": 9223372036854775808, "i64": 9007199254740991}', '{"i64":"9007199254740991","dbl":9223372036854776000}'),
    ("Scalars", '{"dbl": -0.0}', '{"dbl":-0}'),
    ("Scalars", '{"text": "\\u0001\\"\\\\\\u007f\\u00e9"}', '{"text":"\\u0001\\"\\\\\\u007fé"}'),
    ("WellKnown", '{"at": "1972-01-01T10:00:20.020Z", "took": "-1.5s", "i64": 3}',
     '{"at":"1972-01-01T10:00:20.020Z","took":"-1.500s","i64":"3"}'),
    ("Edge", '{"choiceNumber": 0, "optI32": 0}', '{"choiceNumber":"0","optI32":0}'),
]

EMIT_DEFAULTS = ("Edge", '{"snakeCaseName": "x"}',
                 '{"scalars":null,"inner":null,"packedInts":[],"packedLongs":[],"unpackedInts":[],"names":[],'
                 '"blobs":[],"colors":[],"inners":[],"doubles":[],"byName":{},"byId":{},"innerByLong":{},'
                 '"colorByFlag":{},"blobByU64":{},"realBySint":{},"snakeCaseName":"x","myCustomName":0}')

ERRORS = [
    ("Edge", '{"nope": 1}', ['unknown field "nope"', "parley.test.edge.Edge"]),
    ("Edge", '{"inner": {"children": [{}, {"nmae": "x"}]}}', ['unknown field "nmae"', "inner.children[1]"]),
    ("Edge", '{"choiceText": "a", "choiceNumber": "1"}', ["oneof choice", "choiceText"]),
    ("Edge", '{"snakeCaseName": "a", "snake_case_name": "b"}', ["given twice"]),
    ("Scalars", '{"i32": 2147483648}', ["i32", "out of range"]),
    ("Scalars", '{"u32": -1}', ["u32", "out of range"]),
    ("Scalars", '{"i32": 1.5}', ["i32", "not an integer"]),
    ("Scalars", '{"u64": "-1"}', ["u64"]),
    ("Scalars", '{"i64": "12abc"}', ["i64", "not an integer"]),
    ("Scalars", '{"flt": 1e39}', ["flt", "out of range"]),
    ("Scalars", '{"flag": "true"}', ["flag", "true or false"]),
    ("Scalars", '{"text": 5}', ["text", "expected a string"]),
    ("Scalars", '{"data": "not base64!"}', ["data", "base64"]),
    ("Scalars", '{"u64": 18446744073709551615}', ["u64", "give it as a string"]),  # beyond what a double holds
    ("Scalars", '{"i64": 9007199254740993, "dbl": 100000000000000000000}', ["i64", "give it as a string"]),
    ("Scalars", '{"color": "PURPLE"}', ["color", "PURPLE"]),
    ("Edge", '{"byId": {"x": "y"}}', ['byId["x"]', "not an integer"]),
    ("Edge", '{"colorByFlag": {"yes": "RED"}}', ["true or false"]),
    ("Edge", '{"packedInts": [1, null]}', ["packedInts[1]", "null"]),
    ("Edge", '{"inner": []}', ["inner", "expected an object"]),
    ("Edge", '{"names": "x"}', ["names", "expected an array"]),
    ("WellKnown", '{"at": "1972-01-01 10:00:20Z"}', ["at", "RFC 3339"]),
    ("WellKnown", '{"at": "2023-02-29T00:00:00Z"}', ["at", "RFC 3339"]),
    ("WellKnown", '{"took": "5"}', ["took", "duration"]),
    ("WellKnown", '{"mask": "foo_bar"}', ["mask", "lowerCamelCase"]),
    ("WellKnown", '{"any": {}}', ["any", "google.protobuf.Any is not supported"]),
    ("WellKnown", '{"doc": [1]}', ["doc", "google.protobuf.Struct"]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parleyctl", required=True)
    ap.add_argument("--protoset", required=True)
    a = ap.parse_args()
    env = Env(a.parleyctl, a.protoset)
    try:
        for name, text in CASES:
            round_trip(env, name, text)
        print("PASS %d round trips against python3-protobuf" % len(CASES))

        for name, text, want in GOLDEN:
            out = env.decode(name, env.encode(name, text), "--compact").strip()
            check(out == want, "golden %s %s:\n  got  %s\n  want %s" % (name, text, out, want))
        pretty = env.decode("Edge", env.encode("Edge", '{"byName": {"a": 1}, "names": ["x", "y"], "inner": {}}'))
        check(pretty == '{\n  "inner": {},\n  "names": [\n    "x",\n    "y"\n  ],\n  "byName": {\n    "a": 1\n  }\n}\n',
              "pretty layout: %r" % pretty)
        print("PASS %d golden outputs" % (len(GOLDEN) + 1))

        name, text, want = EMIT_DEFAULTS
        out = env.decode(name, env.encode(name, text), "--compact", "--emit-defaults").strip()
        check(out == want, "--emit-defaults:\n  got  %s\n  want %s" % (out, want))
        print("PASS --emit-defaults")

        for name, text, wants in ERRORS:
            r = env.ctl("encode", PKG + name, stdin=text.encode())
            err = r.stderr.decode()
            check(r.returncode == 1 and all(w in err for w in wants),
                  "error %s %s: exit %d, stderr %r, want %s" % (name, text, r.returncode, err, wants))
        print("PASS %d rejected inputs" % len(ERRORS))

        # wire -> JSON failures: malformed bytes, invalid UTF-8, out-of-range Timestamp, Any
        bad = [("Edge", b"\x0a\x05\x01", "malformed"), ("Scalars", b"\x72\x02\xc3\x28", "UTF-8"),
               ("Scalars", b"\x0b\x00", "groups"), ("WellKnown", b"\x0a\x07\x08\x80\x80\x80\x80\x80\x20",
                                                   "Timestamp out of range"),
               ("WellKnown", b"\x9a\x01\x00", "Any is not supported")]
        for name, data, want in bad:
            r = env.ctl("decode", PKG + name, stdin=data)
            check(r.returncode == 1 and want in r.stderr.decode(), "decode of bad %s bytes %r: %r" %
                  (name, data, r.stderr))
        # unknown fields and mismatched wire types are skipped, as protobuf parsers do
        out = env.decode("Inner", b"\x08\x01\xf8\x01\x05\x0a\x01a")
        check(json.loads(out) == {"name": "a"}, "unknown fields: %r" % out)
        # a repeated message field's occurrences; a singular message's merge; last oneof member wins
        data = b"\x12\x03\x0a\x01x" + b"\x12\x02\x10\x07" + b"\x8a\x01\x01a" + b"\x90\x01\x05"
        out = env.decode("Edge", data, "--compact").strip()
        check(out == '{"inner":{"name":"x","count":7},"choiceNumber":"5"}', "merge and oneof: %r" % out)
        print("PASS %d wire-side cases" % (len(bad) + 2))

        # the schema side of --protoset: list and describe without a server
        r = env.ctl("list")
        check(r.returncode == 0 and r.stdout.decode() == "parley.test.edge.EdgeService\n", "list: %r" % r.stdout)
        r = env.ctl("describe", PKG + "Edge")
        text = r.stdout.decode()
        for want in ["  map<int64, .parley.test.edge.Inner> inner_by_long = 13;", "  oneof choice {",
                     "    string choice_text = 17;", "  optional int32 opt_i32 = 21;",
                     "  repeated int32 unpacked_ints = 5 [packed = false];", "  int32 custom = 26;"]:
            check(r.returncode == 0 and want + "\n" in text, "describe Edge misses %r:\n%s" % (want, text))
        r = env.ctl("describe", PKG + "EdgeService.Watch")
        check(r.stdout.decode() == PKG + "EdgeService.Watch is a method:\nrpc Watch ( .parley.test.edge.WellKnown ) "
              "returns ( stream .parley.test.edge.WellKnown );\n", "describe Watch: %r" % r.stdout)
        r = env.ctl("describe", PKG + "Color")
        check("  BLUE = -3;\n" in r.stdout.decode(), "describe Color: %r" % r.stdout)
        print("PASS list and describe from --protoset")
    except Failure as e:
        print("FAIL %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
