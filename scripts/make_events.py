#!/usr/bin/env python3
"""Generate the Lambda event fixtures under events/ (deterministic; outputs are committed).

Each fixture has the shape AWS delivers to the function, so `cargo lambda invoke --data-file`
exercises the same deserialization path as production:

  http-api-v2-detect.json   API Gateway HTTP API, payload 2.0, POST /api/detect, JSON body
  http-api-v2-health.json   API Gateway HTTP API, payload 2.0, GET /api/health
  rest-v1-detect.json       API Gateway REST API proxy (payload 1.0), POST /api/detect, JSON body
  function-url-detect.json  Lambda function URL, raw image/jpeg body (base64, isBase64Encoded)
  s3-put.json               S3 ObjectCreated:Put for incoming/chelsea.jpg
  s3-multi.json             three records: incoming/coffee.jpg, a key with spaces and non-ASCII
                            characters (URL-encoded as S3 does), and a detections/ key to skip

The image in the HTTP events is tests/fixtures/images/chelsea.jpg (a cat, CC0) resized to
320 px wide and re-encoded as JPEG (quality 92, ~21 KB). The S3 events carry the real size and
ETag (MD5) of the objects scripts/local-s3.sh uploads, so they match the local S3 server.
All ids, times and addresses are fixed (documentation ranges: 203.0.113.0/24, account
123456789012), so reruns produce identical files with the same Pillow version.

    python3 scripts/make_events.py            # writes events/*.json
    python3 scripts/make_events.py --check    # exits 1 if a committed file differs
"""

import argparse
import base64
import datetime as dt
import hashlib
import io
import json
import os
import sys
import urllib.parse

from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(REPO_ROOT, "tests", "fixtures", "images")
OUT_DIR = os.path.join(REPO_ROOT, "events")

WIDTH = 320
QUALITY = 92

BUCKET = "lambda-detect-local"
REGION = "us-east-1"
ACCOUNT = "123456789012"
SOURCE_IP = "203.0.113.10"
USER_AGENT = "curl/8.5.0"
WHEN = dt.datetime(2025, 11, 26, 12, 0, 0, tzinfo=dt.timezone.utc)
EPOCH_MS = int(WHEN.timestamp() * 1000)
CLF_TIME = WHEN.strftime("%d/%b/%Y:%H:%M:%S +0000")  # API Gateway's request time format
ISO_TIME = WHEN.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # S3's eventTime format

HTTP_API_ID = "a1b2c3d4e5"
REST_API_ID = "f6g7h8i9j0"
URL_ID = "abcdefghijklmnopqrstuvwxyz012345"  # function URL ids are 32 lowercase alphanumerics
TRACE_ID = f"Root=1-{EPOCH_MS // 1000:08x}-0123456789abcdef01234567"

# Uploaded by scripts/local-s3.sh as incoming/<name>; "my photo été.jpg" is a copy of astronaut.jpg.
UNICODE_KEY = "incoming/my photo été.jpg"
UNICODE_SOURCE = "astronaut.jpg"


def small_jpeg() -> bytes:
    path = os.path.join(IMAGES, "chelsea.jpg")
    if not os.path.exists(path):
        sys.exit(f"make_events: {os.path.relpath(path, REPO_ROOT)} is missing (run scripts/make_fixtures.py)")
    with Image.open(path) as im:
        im = im.convert("RGB")
        height = round(im.height * WIDTH / im.width)
        im = im.resize((WIDTH, height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    # No EXIF, no optimize/progressive: a plain baseline JPEG.
    im.save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()


def detect_body(jpeg: bytes) -> str:
    body = {
        "images": [{"id": "chelsea", "data": base64.b64encode(jpeg).decode("ascii")}],
        "options": {"min_score": 0.5},
    }
    return json.dumps(body, separators=(",", ":"))


def http_v2_event(method: str, path: str, route_key: str, domain: str, headers: dict,
                  body: str | None, is_base64: bool, request_id: str) -> dict:
    """Payload format 2.0: API Gateway HTTP API and Lambda function URLs share it."""
    prefix = domain.split(".", 1)[0]
    all_headers = {
        "accept": "*/*",
        **headers,
        "host": domain,
        "user-agent": USER_AGENT,
        "x-amzn-trace-id": TRACE_ID,
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": ACCOUNT if route_key != "$default" else "anonymous",
            "apiId": prefix,
            "domainName": domain,
            "domainPrefix": prefix,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": USER_AGENT,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": CLF_TIME,
            "timeEpoch": EPOCH_MS,
        },
    }
    if body is not None:  # API Gateway omits "body" when the request has none
        event["body"] = body
    event["isBase64Encoded"] = is_base64
    return event


def http_api_detect(jpeg: bytes) -> dict:
    body = detect_body(jpeg)
    headers = {"content-length": str(len(body)), "content-type": "application/json"}
    return http_v2_event("POST", "/api/detect", "POST /api/detect",
                         f"{HTTP_API_ID}.execute-api.{REGION}.amazonaws.com", headers, body, False,
                         "Tq3nVhB8oAMEbQw=")


def http_api_health() -> dict:
    return http_v2_event("GET", "/api/health", "GET /api/health",
                         f"{HTTP_API_ID}.execute-api.{REGION}.amazonaws.com", {}, None, False,
                         "Tq3nYjvAIAMEbRg=")


def function_url_detect(jpeg: bytes) -> dict:
    headers = {
        "content-length": str(len(jpeg)),
        "content-type": "image/jpeg",
        "x-amzn-tls-cipher-suite": "TLS_AES_128_GCM_SHA256",
        "x-amzn-tls-version": "TLSv1.3",
    }
    return http_v2_event("POST", "/api/detect", "$default", f"{URL_ID}.lambda-url.{REGION}.on.aws",
                         headers, base64.b64encode(jpeg).decode("ascii"), True,
                         "5c0f3a1e-7b2d-4e8f-9a6b-1c2d3e4f5a6b")


def rest_v1_detect(jpeg: bytes) -> dict:
    """REST API proxy integration (payload 1.0), stage "prod" as deployed REST APIs have one.

    Note: lambda_http prefixes the request URI path with the stage ("/prod/api/detect") unless
    AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH is set; the top-level "path" has no stage.
    """
    body = detect_body(jpeg)
    domain = f"{REST_API_ID}.execute-api.{REGION}.amazonaws.com"
    headers = {
        "accept": "*/*",
        "content-type": "application/json",
        "Host": domain,
        "User-Agent": USER_AGENT,
        "X-Amzn-Trace-Id": TRACE_ID,
        "X-Forwarded-For": SOURCE_IP,
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    return {
        "resource": "/api/detect",
        "path": "/api/detect",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "k2lm3n",
            "resourcePath": "/api/detect",
            "httpMethod": "POST",
            "extendedRequestId": "Tq3nbEAbIAMFZ2A=",
            "requestTime": CLF_TIME,
            "path": "/prod/api/detect",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": REST_API_ID,
            "requestTimeEpoch": EPOCH_MS,
            "requestId": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": SOURCE_IP,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": USER_AGENT,
                "user": None,
            },
            "domainName": domain,
            "deploymentId": "p9q8r7",
            "apiId": REST_API_ID,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def s3_record(key: str, source_file: str, seq: int) -> dict:
    """One ObjectCreated:Put record. The key is URL-encoded the way S3 encodes it in events
    (space -> '+', other bytes %XX, '/' kept); size and ETag are those of source_file."""
    with open(os.path.join(IMAGES, source_file), "rb") as f:
        data = f.read()
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": ISO_TIME,
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUSERID1234"},
        "requestParameters": {"sourceIPAddress": SOURCE_IP},
        "responseElements": {
            "x-amz-request-id": f"C3D13FE58DE4C81{seq}",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            # S3 names notification configurations created without an Id (as SAM's are) like this.
            "configurationId": "NWQ0ZjI5YjMtOGM2ZS00YTFkLWI3ZTAtM2Y5YzJkMWU4YTZi",
            "bucket": {
                "name": BUCKET,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{BUCKET}",
            },
            "object": {
                "key": urllib.parse.quote_plus(key, safe="/"),
                "size": len(data),
                "eTag": hashlib.md5(data).hexdigest(),
                "sequencer": f"00{EPOCH_MS // 1000:08X}A1B2C3D{seq}",
            },
        },
    }


def s3_put() -> dict:
    return {"Records": [s3_record("incoming/chelsea.jpg", "chelsea.jpg", 1)]}


def s3_multi() -> dict:
    return {
        "Records": [
            s3_record("incoming/coffee.jpg", "coffee.jpg", 2),
            s3_record(UNICODE_KEY, UNICODE_SOURCE, 3),
            # Outside incoming/ (e.g. a misconfigured trigger): the function must skip it.
            s3_record("detections/rocket.jpg", "rocket.jpg", 4),
        ]
    }


def render(event: dict) -> str:
    return json.dumps(event, indent=2) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--check", action="store_true", help="compare with the files in events/ instead of writing")
    args = ap.parse_args()

    jpeg = small_jpeg()
    outputs = {
        "http-api-v2-detect.json": http_api_detect(jpeg),
        "http-api-v2-health.json": http_api_health(),
        "rest-v1-detect.json": rest_v1_detect(jpeg),
        "function-url-detect.json": function_url_detect(jpeg),
        "s3-put.json": s3_put(),
        "s3-multi.json": s3_multi(),
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    stale = []
    for name, event in outputs.items():
        path = os.path.join(OUT_DIR, name)
        text = render(event)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote events/{name} ({len(text)} bytes)")
    if args.check:
        if stale:
            print("make_events: out of date: " + ", ".join(stale), file=sys.stderr)
            return 1
        print("make_events: events/ is up to date")
    else:
        print(f"HTTP image: chelsea.jpg resized to {WIDTH} px wide, {len(jpeg)} bytes of JPEG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
