"""Failure injection against the real function (cargo lambda watch) and the real local S3
(moto_server) that scripts/integration-test.sh starts: missing objects and buckets, odd keys,
a result write that fails, events that make the runtime panic, and S3 going away (refusing
connections, then accepting them and never answering) and coming back.

The S3 outage test stops the shared moto server and always restarts it (scripts/local-s3.sh
start re-creates the bucket and uploads the images), so the tests after it find S3 as before.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config

from test_lambda_local import BUCKET, EVENTS, IMAGES, PORT, ROOT, call, labels

S3_PORT = os.environ.get("S3_PORT", "5055")
# A second instance of the function, for a configuration the shared one does not have.
SECOND_PORT = str(int(PORT) + 1)
# Upper bound for any answer while S3 is down or hangs (HTTP APIs give up after 30 s).
OUTAGE_BOUND_S = 30


@pytest.fixture(scope="module")
def s3():
    return boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(s3={"addressing_style": "path"}))


def s3_event(key, bucket=BUCKET, *more_keys):
    """events/s3-put.json for `key` (and more records for `more_keys`), keys URL-encoded as S3
    encodes them in notifications (space as `+`, `/` kept)."""
    template = json.loads((EVENTS / "s3-put.json").read_text())
    records = []
    for k in (key, *more_keys):
        record = json.loads(json.dumps(template["Records"][0]))
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        record["s3"]["object"]["key"] = urllib.parse.quote_plus(k, safe="/")
        records.append(record)
    return {"Records": records}


def invoke_event(event, tmp_path, port=PORT, timeout=120):
    """`cargo lambda invoke` with an event; returns (exit code, stdout + stderr, seconds)."""
    path = tmp_path / f"event-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(event))
    start = time.monotonic()
    proc = subprocess.run(
        ["cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", port,
         "--data-file", str(path), "detect-lambda"],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def mentions(output, *texts):
    """cargo lambda prints an invocation error wrapped at 80 columns behind `│` gutters:
    compare with whitespace and gutters removed."""
    squash = lambda s: re.sub(r"[\s│]+", "", s)  # noqa: E731
    return all(squash(t) in squash(output) for t in texts)


def exists(s3, key, bucket=BUCKET):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError:
        return False


def upload(s3, key, name="chelsea.jpg"):
    s3.put_object(Bucket=BUCKET, Key=key, Body=(IMAGES / name).read_bytes(), ContentType="image/jpeg")


def s3_reference(key, count=1):
    """POST /api/detect with `count` references to the same object."""
    image = {"id": "ref", "s3": {"bucket": BUCKET, "key": key}}
    body = json.dumps({"images": [image] * count}).encode()
    start = time.monotonic()
    status, out = call("POST", "/api/detect", body, "application/json", timeout=OUTAGE_BOUND_S + 30)
    return status, out, time.monotonic() - start


# --- S3 errors on the trigger path -------------------------------------------------------------

def test_trigger_missing_object_is_404_and_writes_nothing(s3, tmp_path):
    key = f"incoming/missing-{uuid.uuid4().hex}.jpg"
    code, output, _ = invoke_event(s3_event(key), tmp_path)
    assert code != 0, output
    assert mentions(output, "no such object", key), output
    assert not exists(s3, f"detections/{key}.json")


def test_trigger_unknown_bucket_fails(tmp_path):
    code, output, _ = invoke_event(s3_event("incoming/chelsea.jpg", "no-such-bucket-anywhere"), tmp_path)
    assert code != 0, output
    assert mentions(output, "no such bucket"), output


def test_trigger_batch_with_one_bad_record_fails_and_keeps_the_good_result(s3, tmp_path):
    good = f"incoming/batch-{uuid.uuid4().hex}.jpg"
    bad = f"incoming/batch-missing-{uuid.uuid4().hex}.jpg"
    upload(s3, good)
    code, output, _ = invoke_event(s3_event(good, BUCKET, bad), tmp_path)
    assert code != 0, "one failed record fails the invocation, so Lambda retries"
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"detections/{good}.json")["Body"].read())
    assert stored["status"] == 200 and labels(stored) == ["cat"]
    assert not exists(s3, f"detections/{bad}.json")


@pytest.mark.parametrize("key", [
    "incoming/../../etc.jpg",        # `..` is an ordinary key segment to S3
    "incoming/./x/../y.jpg",
    "incoming/a+b %2F é ☕.jpg",       # `+`, a literal `%2F`, space and non-ASCII, URL-encoded in the event
])
def test_trigger_odd_keys_keep_results_under_the_prefix(s3, tmp_path, key):
    upload(s3, key)
    code, output, _ = invoke_event(s3_event(key), tmp_path)
    assert code == 0, output
    record = json.loads(output)["records"][0]
    assert record["key"] == key, "the event key is URL-decoded exactly once"
    assert record["result_key"] == f"detections/{key}.json"
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"detections/{key}.json")["Body"].read())
    assert labels(stored) == ["cat"] and stored["source"]["key"] == key
    # Nothing was normalized on the way: no result object outside detections/.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert all(k.startswith("detections/") for k in keys if k.endswith(".json")), keys


# --- a result write that fails -----------------------------------------------------------------
# moto does not enforce bucket policies (only IAM identity policies, and only with its
# authentication switched on, which would refuse the function's dummy credentials for reads
# too), so "deny PutObject on detections/*" cannot be set up. The write fails for real instead
# in a second instance of the function whose RESULTS_BUCKET does not exist: the fetch works,
# the detection runs, the PutObject gets NoSuchBucket.

@contextlib.contextmanager
def second_function(**env):
    env_vars = {
        "S3_ENDPOINT_URL": os.environ["S3_ENDPOINT_URL"], "ALLOWED_BUCKETS": BUCKET,
        "RESULTS_PREFIX": "detections/", "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "RUST_LOG": "info", **env,
    }
    log = open(ROOT / "target" / "local-function" / f"watch-{SECOND_PORT}.log", "w")
    proc = subprocess.Popen(
        ["cargo", "lambda", "watch", "--release", "--ignore-changes", "--invoke-address", "127.0.0.1",
         "--invoke-port", SECOND_PORT, "--env-vars", ",".join(f"{k}={v}" for k, v in env_vars.items())],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        health = f"http://127.0.0.1:{SECOND_PORT}/lambda-url/detect-lambda/api/health"
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(health, timeout=60) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "the second cargo lambda watch exited"
            assert time.monotonic() < deadline, "the second function did not start"
            time.sleep(1)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_result_write_failure_fails_the_invocation(s3, tmp_path):
    key = f"incoming/write-fails-{uuid.uuid4().hex}.jpg"
    upload(s3, key)
    with second_function(RESULTS_BUCKET="no-such-results-bucket"):
        code, output, _ = invoke_event(s3_event(key), tmp_path, port=SECOND_PORT)
    assert code != 0, output
    assert mentions(output, "no-such-results-bucket", "no such bucket"), output
    assert not exists(s3, f"detections/{key}.json"), "nothing may be written elsewhere"


# --- events the runtime cannot use -------------------------------------------------------------

def test_bad_events_fail_the_invocation_and_the_function_lives_on(tmp_path):
    code, output, _ = invoke_event({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {}}}]}, tmp_path)
    assert code != 0 and mentions(output, "malformed S3 event"), output
    code, output, _ = invoke_event({"hello": "world"}, tmp_path)
    assert code != 0 and mentions(output, "unsupported event"), output
    # lambda_http panics on a body flagged base64 that is not (API Gateway never sends one);
    # the runtime catches the panic and fails only this invocation.
    event = json.loads((EVENTS / "http-api-v2-health.json").read_text())
    event.update(body="*** not base64 ***", isBase64Encoded=True)
    code, output, _ = invoke_event(event, tmp_path)
    assert code != 0, output
    status, body = call("GET", "/api/health")
    assert status == 200 and body["status"] == "ok"


# --- S3 outage ---------------------------------------------------------------------------------

def local_s3(command):
    env = dict(os.environ, S3_PORT=S3_PORT, BUCKET=BUCKET)
    subprocess.run(["scripts/local-s3.sh", command], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=120)


@contextlib.contextmanager
def black_hole(port):
    """A listener on the S3 port that never accepts: the kernel completes the TCP handshakes
    (backlog), requests are sent, no answer ever comes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(port)))
    sock.listen(64)
    try:
        yield
    finally:
        sock.close()


def test_s3_outage_fails_fast_and_a_retry_recovers(s3, tmp_path):
    key = "incoming/chelsea.jpg"
    result = f"detections/{key}.json"
    s3.delete_object(Bucket=BUCKET, Key=result)
    timings = {}  # shown with pytest -rP
    local_s3("stop")
    try:
        # Connections refused.
        code, output, seconds = invoke_event(s3_event(key), tmp_path)
        timings["refused: S3 trigger invoke"] = seconds
        assert code != 0 and mentions(output, "cannot reach S3"), output
        assert seconds < OUTAGE_BOUND_S, f"invoke took {seconds:.1f}s"
        status, out, seconds = s3_reference(key)
        timings["refused: HTTP request with an S3 reference"] = seconds
        assert status == 422 and out["results"][0]["status"] == 502, out
        assert "cannot reach S3" in out["results"][0]["error"]
        assert seconds < OUTAGE_BOUND_S, f"request took {seconds:.1f}s"
        # Connections accepted, never answered. Four references: fetched one after the other
        # they would take four timeouts; they are fetched together.
        with black_hole(S3_PORT):
            status, out, seconds = s3_reference(key, count=4)
            timings["no answer: HTTP request with 4 S3 references"] = seconds
            assert status == 422 and [r["status"] for r in out["results"]] == [504] * 4, out
            assert "timed out" in out["results"][0]["error"]
            assert seconds < OUTAGE_BOUND_S, f"request took {seconds:.1f}s"
            code, output, seconds = invoke_event(s3_event(key), tmp_path)
            timings["no answer: S3 trigger invoke"] = seconds
            assert code != 0 and mentions(output, "timed out"), output
            assert seconds < OUTAGE_BOUND_S, f"invoke took {seconds:.1f}s"
    finally:
        local_s3("start")
    # The retry Lambda would make: the same event now succeeds and writes the result.
    code, output, seconds = invoke_event(s3_event(key), tmp_path)
    timings["restarted: S3 trigger invoke"] = seconds
    print(json.dumps({k: round(v, 2) for k, v in timings.items()}, indent=1))
    assert code == 0, output
    assert json.loads(output)["written"] == 1
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=result)["Body"].read())
    assert stored["status"] == 200 and labels(stored) == ["cat"]
