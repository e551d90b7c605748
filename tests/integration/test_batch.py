"""S3 Batch Operations invocations (the backfill path) against the real function and moto_server.
Each object gets its own invocation, as S3 Batch Operations sends them, in schema 2.0 (bucket
name) and 1.0 (bucket ARN). S3 throttling is real HTTP too: a second instance of the function
talks to moto through a small proxy that answers 503 SlowDown for chosen keys, as S3 does
under load; the SDK retries, gives up, and the task must come back as TemporaryFailure, then
succeed when Batch Operations retries it after the throttling stops.

Run through scripts/integration-test.sh (it starts moto_server and the function).
"""

import contextlib
import http.client
import http.server
import json
import os
import threading
import urllib.parse
import uuid

import pytest

from test_failures import SECOND_PORT, exists, second_function
from test_lambda_local import BUCKET, EVENTS, IMAGES, labels
from test_queue import invoke_json

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b'<Message>Please reduce your request rate.</Message></Error>')


class ThrottlingProxy(http.server.ThreadingHTTPServer):
    """Forwards S3 requests to moto; GETs of keys containing `throttled` get 503 SlowDown
    while `throttling` is set."""
    daemon_threads = True
    throttling = True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self):
        body = self._body()
        if self.command == "GET" and "throttled" in self.path and self.server.throttling:
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(SLOW_DOWN)))
            self.end_headers()
            self.wfile.write(SLOW_DOWN)
            return
        target = urllib.parse.urlsplit(os.environ["S3_ENDPOINT_URL"])
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection", "transfer-encoding")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward


@contextlib.contextmanager
def throttling_proxy():
    server = ThrottlingProxy(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def s3():
    from test_queue import client
    return client("s3")


def event_v2(key, bucket=BUCKET):
    """events/s3-batch-v2.json for one object, the key URL-encoded."""
    event = json.loads((EVENTS / "s3-batch-v2.json").read_text())
    event["invocationId"] = uuid.uuid4().hex
    event["tasks"] = [{"taskId": uuid.uuid4().hex, "s3Bucket": bucket,
                       "s3Key": urllib.parse.quote_plus(key, safe="/"), "s3VersionId": None}]
    return event


def only_result(reply, event):
    assert reply["invocationSchemaVersion"] == event["invocationSchemaVersion"]
    assert reply["invocationId"] == event["invocationId"]
    assert reply["treatMissingKeysAs"] == "PermanentFailure"
    [result] = reply["results"]
    assert result["taskId"] == event["tasks"][0]["taskId"]
    return result


def test_batch_v2_codes_and_a_retried_temporary_failure(s3, tmp_path):
    run = f"incoming/b-{uuid.uuid4().hex[:8]}"
    cat = (IMAGES / "chelsea.jpg").read_bytes()
    keys = {
        "good": f"{run}/IMG 0002.JPG",
        "corrupt": f"{run}/broken.jpg",
        "missing": f"{run}/gone.jpg",
        "not_image": f"{run}/notes.txt",
        "throttled": f"{run}/throttled.jpg",
    }
    for name, key in keys.items():
        if name != "missing":
            s3.put_object(Bucket=BUCKET, Key=key, Body=cat[:300] if name == "corrupt" else cat)
    expected = {"good": "Succeeded", "corrupt": "PermanentFailure", "missing": "PermanentFailure",
                "not_image": "PermanentFailure", "throttled": "TemporaryFailure"}
    with throttling_proxy() as proxy:
        endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
        with second_function(S3_ENDPOINT_URL=endpoint):
            results = {}
            for name, key in keys.items():
                event = event_v2(key)
                results[name] = only_result(invoke_json(event, tmp_path, SECOND_PORT), event)
            assert {n: r["resultCode"] for n, r in results.items()} == expected, results
            assert results["good"]["resultString"] == f"detections/{keys['good']}.json"
            assert "no such object" in results["missing"]["resultString"]
            assert "not an image" in results["not_image"]["resultString"]
            assert "503" in results["throttled"]["resultString"], results["throttled"]
            assert labels(json.loads(s3.get_object(Bucket=BUCKET, Key=results["good"]["resultString"])["Body"].read())) == ["cat"]
            for name in ("corrupt", "missing", "not_image", "throttled"):
                assert not exists(s3, f"detections/{keys[name]}.json"), name
            # S3 recovers; Batch Operations retries the temporary failure.
            proxy.throttling = False
            event = event_v2(keys["throttled"])
            retried = only_result(invoke_json(event, tmp_path, SECOND_PORT), event)
    assert retried["resultCode"] == "Succeeded", retried
    assert exists(s3, f"detections/{keys['throttled']}.json")


def test_batch_v1_names_the_bucket_by_arn(s3, tmp_path):
    key = f"incoming/b-{uuid.uuid4().hex[:8]}/v1.jpg"
    s3.put_object(Bucket=BUCKET, Key=key, Body=(IMAGES / "chelsea.jpg").read_bytes())
    event = json.loads((EVENTS / "s3-batch-v1.json").read_text())
    event["tasks"][0].update(s3Key=urllib.parse.quote_plus(key, safe="/"), s3BucketArn=f"arn:aws:s3:::{BUCKET}")
    result = only_result(invoke_json(event, tmp_path), event)
    assert result["resultCode"] == "Succeeded", result
    assert exists(s3, f"detections/{key}.json")
