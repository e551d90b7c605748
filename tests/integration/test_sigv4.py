"""`detect files --endpoint URL --sigv4` and `detect send --sigv4`, the way a deployed API with
AuthMode=IAM sees them.

In front of the function (under `cargo lambda watch`, started by scripts/integration-test.sh)
runs a loopback stand-in for API Gateway's AWS_IAM authorization: for every request it
recomputes the SigV4 signature with botocore's signer (canonical request, string to sign,
signature, from the request exactly as received) and forwards the request only when the
signatures match; otherwise it answers 403 with a message in API Gateway's shape
(`{"message": ...}`). The signing code under
test is the AWS SDK's (aws-sigv4, called by the project's client); the checker is botocore.
"""

import csv
import hmac
import http.server
import json
import os
import pathlib
import re
import subprocess
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMAGES = ROOT / "tests" / "fixtures" / "images"
DETECT = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "detect"
PORT = os.environ.get("WATCH_PORT", "9055")
FUNCTION = os.environ.get("FUNCTION_URL", f"http://127.0.0.1:{PORT}/lambda-url/detect-lambda")
KEY, SECRET, REGION = "AKIDLAMBDADETECTTEST", "bm90LWEtcmVhbC1zZWNyZXQtZm9yLXRlc3Rz", "eu-west-1"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$")


def check_signature(method, url, headers, body, token=None):
    """None when botocore computes the same signature, else API Gateway's 403 message."""
    auth = headers.get("Authorization")
    if not auth:
        return "Missing Authentication Token"
    m = AUTHORIZATION.match(auth)
    if not m:
        return "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'."
    if m["key"] != KEY:
        return "The security token included in the request is invalid."
    if (m["region"], m["service"]) != (REGION, "execute-api"):
        return f"Credential should be scoped to a valid region and service, not {m['region']}/{m['service']}."
    stamp = headers.get("X-Amz-Date", "")
    try:
        sent = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    if abs((datetime.now(timezone.utc) - sent).total_seconds()) > 300:
        return "Signature expired"
    if headers.get("X-Amz-Security-Token") != token:
        return "The security token included in the request is invalid."
    signed = m["signed"].split(";")
    if "host" not in signed:
        return "'Host' must be a signed header"
    request = AWSRequest(method=method, url=url, data=body,
                         headers={h: headers[h] for h in signed if h in headers})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(KEY, SECRET, token), "execute-api", REGION)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)),
                                request)
    if not hmac.compare_digest(expected, m["signature"]):
        return ("The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.")
    return None


class Authorizer(http.server.BaseHTTPRequestHandler):
    token = None  # the session token the credentials carry, if any
    seen = []  # (path, verdict) per request

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        url = f"http://{self.headers['Host']}{self.path}"
        verdict = check_signature("POST", url, self.headers, body, Authorizer.token)
        Authorizer.seen.append((self.path, verdict))
        if verdict:
            return self.answer(403, json.dumps({"message": verdict}).encode(), "application/json")
        forward = urllib.request.Request(FUNCTION + self.path, data=body, method="POST",
                                         headers={"Content-Type": self.headers["Content-Type"]})
        try:
            with urllib.request.urlopen(forward, timeout=120) as r:
                self.answer(r.status, r.read(), r.headers["Content-Type"])
        except urllib.error.HTTPError as e:
            self.answer(e.code, e.read(), e.headers["Content-Type"])

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def gateway():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Authorizer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def env(secret=SECRET, token=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION=REGION,
             AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
             AWS_EC2_METADATA_DISABLED="true")
    if token:
        e["AWS_SESSION_TOKEN"] = token
    return e


def detect(*args, environ=None):
    return subprocess.run([str(DETECT), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=environ or env())


def files_json(*args, environ=None):
    p = detect("files", "--format", "json", *args, environ=environ)
    assert p.stdout, p.stderr
    return p, json.loads(p.stdout)


PHOTOS = [IMAGES / "chelsea.jpg", IMAGES / "coffee.jpg"]


def test_signed_files_match_the_in_process_run(gateway):
    Authorizer.seen.clear()
    remote_p, remote = files_json("--endpoint", f"{gateway}/api/detect", "--sigv4", "--jobs", "2",
                                  *PHOTOS)
    assert remote_p.returncode == 0, remote_p.stderr
    assert "signing requests with SigV4 (execute-api, eu-west-1)" in remote_p.stderr
    assert [v for _, v in Authorizer.seen] == [None, None], Authorizer.seen
    local_p, local = files_json(*PHOTOS)
    assert local_p.returncode == 0, local_p.stderr
    assert [r["id"] for r in remote] == [str(p) for p in PHOTOS]
    for mine, theirs in zip(remote, local):
        assert mine["status"] == theirs["status"] == 200
        assert (mine["width"], mine["height"]) == (theirs["width"], theirs["height"])
        assert [d["label"] for d in mine["detections"]] == [d["label"] for d in theirs["detections"]]
        assert mine["detections"], mine
        for a, b in zip(mine["detections"], theirs["detections"]):
            assert abs(a["score"] - b["score"]) < 1e-4
            assert a["box_px"] == b["box_px"]


def test_options_travel_signed_in_the_query(gateway):
    Authorizer.seen.clear()
    p, results = files_json("--endpoint", f"{gateway}/api/detect", "--sigv4", "--classes",
                            "cup,dining table", "--min-score", "0.3", IMAGES / "coffee.jpg")
    assert p.returncode == 0, p.stderr
    path, verdict = Authorizer.seen[-1]
    assert verdict is None and "classes=cup%2Cdining%20table" in path, Authorizer.seen
    labels = {d["label"] for d in results[0]["detections"]}
    assert labels and labels <= {"cup", "dining table"}, results
    assert all(d["score"] >= 0.3 for d in results[0]["detections"])


def test_temporary_credentials_send_their_session_token(gateway):
    Authorizer.token = "FwoGZXIvYXdzEXAMPLETOKEN//+="
    try:
        p, results = files_json("--endpoint", f"{gateway}/api/detect", "--sigv4", PHOTOS[0],
                                environ=env(token=Authorizer.token))
    finally:
        Authorizer.token = None
    assert p.returncode == 0 and results[0]["status"] == 200, (p.stderr, results)


@pytest.mark.parametrize("sign, secret, message", [
    (False, SECRET, "Missing Authentication Token"),
    (True, "d3Jvbmctc2VjcmV0", "The request signature we calculated does not match"),
])
def test_unsigned_or_badly_signed_requests_are_refused(gateway, sign, secret, message):
    args = ["--endpoint", f"{gateway}/api/detect", *(["--sigv4"] if sign else []), PHOTOS[0]]
    p, results = files_json(*args, environ=env(secret=secret))
    assert p.returncode == 1, p.stderr  # no image could be processed
    assert results[0]["status"] == 403
    assert results[0]["error"].startswith("HTTP 403: " + message), results


def test_sigv4_without_an_endpoint_or_region_is_a_usage_error(gateway):
    p = detect("files", "--sigv4", PHOTOS[0])
    assert p.returncode != 0 and "--endpoint" in p.stderr, p.stderr
    no_region = {k: v for k, v in env().items() if k != "AWS_REGION"}
    p = detect("files", "--endpoint", f"{gateway}/api/detect", "--sigv4", PHOTOS[0],
               environ=no_region)
    assert p.returncode != 0 and "no region" in p.stderr, p.stderr
    p = detect("files", "--endpoint", f"{gateway}/api/detect", "--sigv4", "--region", REGION,
               PHOTOS[0], environ=no_region)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("encoding, batch", [("binary", 1), ("json", 2), ("multipart", 2)])
def test_send_signs_every_body_form(gateway, tmp_path, encoding, batch):
    Authorizer.seen.clear()
    rows = tmp_path / "rows.csv"
    p = detect("send", "--endpoint", f"{gateway}/api/detect", "--sigv4", "--encoding", encoding,
               "--batch", batch, "--out", rows, *PHOTOS)
    assert p.returncode == 0, p.stderr
    assert Authorizer.seen and all(v is None for _, v in Authorizer.seen), Authorizer.seen
    with rows.open() as f:
        statuses = [r["status"] for r in csv.DictReader(f)]
    assert statuses == ["200", "200"], statuses
