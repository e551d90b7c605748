"""End-to-end tests: the function under `cargo lambda watch`, a real local S3 (moto_server),
real HTTP requests and `cargo lambda invoke`. Run through scripts/integration-test.sh, which
starts both servers and sets WATCH_PORT, S3_ENDPOINT_URL and BUCKET.
"""

import base64
import json
import os
import pathlib
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib

import boto3
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMAGES = ROOT / "tests" / "fixtures" / "images"
EVENTS = ROOT / "events"
PORT = os.environ.get("WATCH_PORT", "9055")
BASE = f"http://127.0.0.1:{PORT}/lambda-url/detect-lambda"
BUCKET = os.environ.get("BUCKET", "lambda-detect-local")


def call(method, path, body=None, content_type=None, timeout=120):
    """One HTTP request to the function; returns (status, parsed JSON body)."""
    req = urllib.request.Request(BASE + path, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def b64(name):
    return base64.b64encode((IMAGES / name).read_bytes()).decode()


def labels(result):
    return [d["label"] for d in result["detections"]]


@pytest.fixture(scope="session")
def s3():
    return boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def invoke(event_file):
    """`cargo lambda invoke` with an event fixture; returns (exit code, stdout, stderr)."""
    proc = subprocess.run(
        ["cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", PORT,
         "--data-file", str(event_file), "detect-lambda"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def test_health():
    status, body = call("GET", "/api/health")
    assert status == 200
    assert body["model"]["name"] == "mobilenet_ssd_v2_coco_quant_postprocess.tflite"
    assert body["model"]["input_width"] == 300
    assert body["init_ms"] > 0


def test_base64_json():
    body = json.dumps({"images": [{"id": "cat", "data": b64("chelsea.jpg")},
                                  {"id": "cup", "data": b64("coffee.jpg")}]}).encode()
    status, out = call("POST", "/api/detect", body, "application/json")
    assert status == 200, out
    assert [r["id"] for r in out["results"]] == ["cat", "cup"]
    assert labels(out["results"][0]) == ["cat"]
    assert "cup" in labels(out["results"][1])
    assert out["summary"]["images"] == 2 and out["summary"]["succeeded"] == 2
    assert out["summary"]["avg_inference_ms"] > 0
    assert 0.0 <= out["results"][0]["detections"][0]["box"]["xmax"] <= 1.0
    assert out["request_id"]


def test_legacy_json_form():
    body = json.dumps({"chelsea.jpg": b64("chelsea.jpg")}).encode()
    status, out = call("POST", "/api/detect", body, "application/json")
    assert status == 200, out
    assert out["results"][0]["id"] == "chelsea.jpg"
    assert labels(out["results"][0]) == ["cat"]


def test_raw_binary_with_query_options():
    data = (IMAGES / "coffee.jpg").read_bytes()
    status, out = call("POST", "/api/detect?exclude_classes=cup&min_score=0.3", data, "image/jpeg")
    assert status == 200, out
    assert "cup" not in labels(out["results"][0])
    assert "dining table" in labels(out["results"][0])


def test_multipart():
    boundary = "----lambda-detect-test"
    parts = []
    for name in ["chelsea.jpg", "astronaut.jpg"]:
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n".encode() + (IMAGES / name).read_bytes() + b"\r\n")
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n"
                 "{\"min_score\": 0.6}\r\n".encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    status, out = call("POST", "/api/detect", body, f"multipart/form-data; boundary={boundary}")
    assert status == 200, out
    assert [r["id"] for r in out["results"]] == ["chelsea.jpg", "astronaut.jpg"]
    assert labels(out["results"][0]) == ["cat"]
    assert labels(out["results"][1]) == ["person"]


def test_s3_reference_and_allow_list():
    body = json.dumps({"images": [
        {"id": "from-s3", "s3": {"bucket": BUCKET, "key": "incoming/chelsea.jpg"}},
        {"id": "missing", "s3": {"bucket": BUCKET, "key": "incoming/no-such.jpg"}},
        {"id": "denied", "s3": {"bucket": "someone-elses-bucket", "key": "secret.jpg"}},
    ]}).encode()
    status, out = call("POST", "/api/detect", body, "application/json")
    assert status == 200, out
    ok, missing, denied = out["results"]
    assert ok["status"] == 200 and labels(ok) == ["cat"]
    assert missing["status"] == 404
    assert denied["status"] == 403 and "allow-list" in denied["error"]
    assert out["summary"]["failed"] == 2


def test_corrupt_and_empty_images():
    body = json.dumps({"images": [{"id": "junk", "data": base64.b64encode(b"\xff\xd8\xff garbage").decode()},
                                  {"id": "empty", "data": ""}]}).encode()
    status, out = call("POST", "/api/detect", body, "application/json")
    assert status == 422, out
    assert out["error"]["status"] == 422
    assert [r["status"] for r in out["results"]] == [422, 400]
    status, out = call("POST", "/api/detect", b"", "image/jpeg")
    assert status == 400 and out["error"]["status"] == 400


def test_body_over_6mb_is_413():
    status, out = call("POST", "/api/detect", b"\xff" * (6 * 1024 * 1024 + 1), "image/jpeg")
    assert status == 413, out
    assert out["error"]["status"] == 413


def png_header(width, height):
    """A PNG whose header claims width x height; the pixel data is a tiny bogus IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_pixel_bomb_is_refused_fast():
    start = time.monotonic()
    status, out = call("POST", "/api/detect", png_header(60000, 60000), "image/png")
    elapsed = time.monotonic() - start
    assert status == 422, out  # no usable image: the only one was refused
    assert out["results"][0]["status"] == 413
    assert "pixels" in out["results"][0]["error"]
    assert elapsed < 5, f"took {elapsed:.1f}s"


def test_bad_base64_and_bad_requests():
    status, out = call("POST", "/api/detect", b'{"images": [{"id": "x", "data": "***not base64***"}]}',
                       "application/json")
    assert status == 400 and "base64" in out["error"]["message"]
    status, out = call("POST", "/api/detect", b"{not json", "application/json")
    assert status == 400
    status, out = call("POST", "/api/detect", b"hello", "text/plain")
    assert status == 415 and out["error"]["status"] == 415
    status, out = call("GET", "/api/nothing-here")
    assert status == 404
    status, out = call("GET", "/api/detect")
    assert status == 405
    too_many = json.dumps({"images": [{"data": ""}] * 1000}).encode()
    status, out = call("POST", "/api/detect", too_many, "application/json")
    assert status == 413


@pytest.mark.parametrize("event", ["http-api-v2-detect.json", "rest-v1-detect.json", "function-url-detect.json"])
def test_invoke_http_events(event):
    code, stdout, stderr = invoke(EVENTS / event)
    assert code == 0, stderr
    response = json.loads(stdout)
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert labels(body["results"][0]) == ["cat"]


def test_invoke_health_event():
    code, stdout, stderr = invoke(EVENTS / "http-api-v2-health.json")
    assert code == 0, stderr
    assert json.loads(json.loads(stdout)["body"])["status"] == "ok"


def test_s3_put_event_writes_the_result(s3):
    s3.delete_object(Bucket=BUCKET, Key="detections/incoming/chelsea.jpg.json")
    code, stdout, stderr = invoke(EVENTS / "s3-put.json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["written"] == 1 and summary["failed"] == 0
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key="detections/incoming/chelsea.jpg.json")["Body"].read())
    assert stored["status"] == 200
    assert labels(stored) == ["cat"]
    assert stored["source"]["bucket"] == BUCKET and stored["source"]["key"] == "incoming/chelsea.jpg"
    assert stored["source"]["etag"]
    assert stored["width"] == 451


def test_s3_multi_event_decodes_keys_and_skips_results(s3):
    code, stdout, stderr = invoke(EVENTS / "s3-multi.json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    outcomes = {r["key"]: r["outcome"] for r in summary["records"]}
    assert outcomes["incoming/coffee.jpg"] == "written"
    assert outcomes["incoming/my photo été.jpg"] == "written"
    assert outcomes["detections/rocket.jpg"] == "skipped"
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key="detections/incoming/my photo été.jpg.json")["Body"].read())
    assert labels(stored) == ["person"]


def test_s3_event_for_missing_object_fails_the_invoke(tmp_path):
    event = json.loads((EVENTS / "s3-put.json").read_text())
    event["Records"][0]["s3"]["object"]["key"] = "incoming/does-not-exist.jpg"
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(event))
    code, stdout, stderr = invoke(path)
    assert code != 0, "a failed record must fail the invocation so Lambda retries"
    assert "does-not-exist" in stdout + stderr
