"""CloudWatch's Smithy RPC v2 CBOR protocol in front of moto, which answers only its JSON and query protocols.

aws-sdk-cloudwatch 1.100 and later send `POST /service/GraniteServiceVersion20100801/operation/<Op>` with a
CBOR body (`smithy-protocol: rpc-v2-cbor`). This bridge decodes the request, sends the same operation to moto
in the awsJson1_0 protocol (`X-Amz-Target: GraniteServiceVersion20100801.<Op>`), and encodes moto's answer
back to CBOR, guided by botocore's CloudWatch model so timestamps become CBOR tag 1 (epoch seconds as a double) and blobs
byte strings, as the protocol requires; gzip request bodies (the SDK compresses large PutMetricData calls)
are inflated first. Errors keep moto's status, `__type` and message, and the
`x-amzn-query-error` header the SDK reads for query-compatible error codes.

    python tools/cloudwatch_bridge.py HOST PORT MOTO_URL
"""

import base64
import datetime
import gzip
import http.server
import json
import sys
import urllib.error
import urllib.request

import botocore.session
import cbor2

PREFIX = "/service/GraniteServiceVersion20100801/operation/"
TARGET = "GraniteServiceVersion20100801."
MODEL = botocore.session.get_session().get_service_model("cloudwatch")


def to_json(value):
    """CBOR-decoded request values to what awsJson1_0 carries."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value


def to_cbor(value, shape):
    """A JSON answer to CBOR values, by the output shape: timestamps and blobs need their own types."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {
            name: to_cbor(item, shape.members.get(name))
            for name, item in value.items()
        }
    if kind == "list":
        return [to_cbor(item, shape.member) for item in value]
    if kind == "map":
        return {key: to_cbor(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        # RPC v2 CBOR: tag 1 around a double of epoch seconds (the SDK refuses an integer there).
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return cbor2.CBORTag(1, float(value))
    if kind == "blob":
        return base64.b64decode(value)
    if kind in ("double", "float") and isinstance(value, int):
        return float(value)
    return value


class Bridge(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    moto = ""

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        sys.stderr.write("bridge: " + (format % args) + "\n")

    def answer(self, status, body, extra_headers=()):
        payload = cbor2.dumps(body)
        self.send_response(status)
        self.send_header("smithy-protocol", "rpc-v2-cbor")
        self.send_header("Content-Type", "application/cbor")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self.path.startswith(PREFIX):
            self.answer(404, {"__type": "UnknownOperationException", "message": f"not a CloudWatch operation: {self.path}"})
            return
        operation = self.path[len(PREFIX):]
        try:
            model = MODEL.operation_model(operation)
        except Exception:  # botocore raises OperationNotFoundError
            self.answer(404, {"__type": "UnknownOperationException", "message": f"unknown operation {operation}"})
            return
        try:
            # The SDK gzips PutMetricData bodies of 10 KiB and more (CloudWatch's request compression).
            if "gzip" in (self.headers.get("Content-Encoding") or ""):
                raw = gzip.decompress(raw)
            request = cbor2.loads(raw) if raw else {}
            if not isinstance(request, dict):
                raise ValueError(f"expected a map, got {type(request).__name__}")
            request = to_json(request)
        except Exception as err:  # a malformed body is the client's error, as CloudWatch would say
            self.answer(400, {"__type": "SerializationException", "message": f"request is not a CBOR map: {err}"})
            return
        forwarded = urllib.request.Request(
            self.moto + "/",
            data=json.dumps(request).encode(),
            method="POST",
            headers={
                "X-Amz-Target": TARGET + operation,
                "Content-Type": "application/x-amz-json-1.0",
                # moto reads the region and account from the credential scope; it does not check signatures.
                "Authorization": self.headers.get("Authorization", ""),
            },
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=60) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            status, headers, body = err.code, err.headers, err.read()
        except OSError as err:
            self.answer(503, {"__type": "ServiceUnavailable", "message": f"moto unreachable: {err}"})
            return
        answer = json.loads(body or b"{}")
        passed = [(name, value) for name, value in headers.items() if name.lower() in ("x-amzn-query-error", "x-amzn-requestid")]
        if status >= 400:
            self.answer(status, {"__type": answer.get("__type", "InternalFailure"),
                                 "message": answer.get("message") or answer.get("Message", "")}, passed)
        else:
            self.answer(status, to_cbor(answer, model.output_shape) or {}, passed)


def main():
    host, port, moto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    Bridge.moto = moto.rstrip("/")
    http.server.ThreadingHTTPServer((host, port), Bridge).serve_forever()


if __name__ == "__main__":
    main()
