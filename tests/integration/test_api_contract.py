"""The API contract checked with clients no one here wrote, against the function under
`cargo lambda watch` (scripts/integration-test.sh starts it, and moto for S3):

* boto3's Rekognition client and the AWS CLI's `rekognition detect-labels`, pointed at the
  function by endpoint URL only: DetectLabels with image bytes and S3 objects, options,
  filters, and botocore's typed exceptions;
* schemathesis, running the OpenAPI document served at GET /api/openapi.json against the
  function (no 5xx, documented statuses, content types and response schemas);
* the client examples of docs/API.md, run as written.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMAGES = ROOT / "tests" / "fixtures" / "images"
PORT = os.environ.get("WATCH_PORT", "9055")
BASE = os.environ.get("FUNCTION_URL", f"http://127.0.0.1:{PORT}/lambda-url/detect-lambda")
BUCKET = os.environ.get("BUCKET", "lambda-detect-local")
REGION = "us-east-1"
# The function ignores credentials (it sits behind API Gateway's auth); clients need some.
DUMMY = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def rekognition():
    return boto3.client("rekognition", endpoint_url=BASE, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}, read_timeout=120))


@pytest.fixture(scope="module")
def s3_images():
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")
    for name in ["chelsea.jpg", "coffee.jpg"]:
        s3.put_object(Bucket=BUCKET, Key=f"incoming/{name}", Body=(IMAGES / name).read_bytes())
    return s3


def image(name):
    return (IMAGES / name).read_bytes()


def names(response):
    return [label["Name"] for label in response["Labels"]]


def test_boto3_detect_labels_bytes(rekognition):
    response = rekognition.detect_labels(Image={"Bytes": image("chelsea.jpg")})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert names(response) == ["Cat"]
    cat = response["Labels"][0]
    assert 55 <= cat["Confidence"] <= 100
    assert len(cat["Instances"]) == 1
    box = cat["Instances"][0]["BoundingBox"]
    assert set(box) == {"Width", "Height", "Left", "Top"}
    assert all(0 <= v <= 1 for v in box.values())
    assert box["Width"] > 0.3 and box["Height"] > 0.3
    assert cat["Parents"] == [] and cat["Categories"] == []
    assert response["LabelModelVersion"]
    assert "ImageProperties" not in response
    print(json.dumps({k: v for k, v in response.items() if k != "ResponseMetadata"}, indent=1))


def test_boto3_detect_labels_s3_object(rekognition, s3_images):
    response = rekognition.detect_labels(
        Image={"S3Object": {"Bucket": BUCKET, "Name": "incoming/coffee.jpg"}}, MinConfidence=50)
    assert "Cup" in names(response)


def test_boto3_options_change_the_answer(rekognition):
    coffee = image("coffee.jpg")
    low = names(rekognition.detect_labels(Image={"Bytes": coffee}, MinConfidence=30))
    assert "Cup" in low and "Dining Table" in low, low
    default = names(rekognition.detect_labels(Image={"Bytes": coffee}))
    high = names(rekognition.detect_labels(Image={"Bytes": coffee}, MinConfidence=99))
    assert len(high) < len(default) <= len(low)
    assert names(rekognition.detect_labels(Image={"Bytes": coffee}, MinConfidence=30,
                                           MaxLabels=1)) == low[:1]
    only = rekognition.detect_labels(
        Image={"Bytes": coffee}, MinConfidence=30,
        Settings={"GeneralLabels": {"LabelInclusionFilters": ["Dining Table"]}})
    assert names(only) == ["Dining Table"]
    without = rekognition.detect_labels(
        Image={"Bytes": coffee}, MinConfidence=30,
        Settings={"GeneralLabels": {"LabelExclusionFilters": ["Cup"]}})
    assert "Cup" not in names(without) and names(without)
    props = rekognition.detect_labels(Image={"Bytes": coffee},
                                      Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"])
    assert props["ImageProperties"] == {}


def test_boto3_typed_exceptions(rekognition):
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException) as err:
        rekognition.detect_labels(Image={"Bytes": b"\xff\xd8\xff this is not a JPEG"})
    assert err.value.response["Error"]["Message"]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(rekognition.exceptions.AccessDeniedException):
        rekognition.detect_labels(Image={"S3Object": {"Bucket": "someone-elses-bucket", "Name": "a.jpg"}})
    with pytest.raises(rekognition.exceptions.InvalidS3ObjectException):
        rekognition.detect_labels(Image={"S3Object": {"Bucket": BUCKET, "Name": "incoming/no-such.jpg"}})
    with pytest.raises(rekognition.exceptions.ImageTooLargeException):
        rekognition.detect_labels(Image={"Bytes": b"\0" * (5 * 1024 * 1024 + 1)})


def test_aws_cli_detect_labels():
    proc = subprocess.run(
        ["aws", "rekognition", "detect-labels", "--endpoint-url", BASE, "--region", REGION,
         "--image-bytes", f"fileb://{IMAGES / 'chelsea.jpg'}", "--max-labels", "5", "--output", "json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **DUMMY})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [label["Name"] for label in out["Labels"]] == ["Cat"]
    proc = subprocess.run(
        ["aws", "rekognition", "detect-labels", "--endpoint-url", BASE, "--region", REGION,
         "--image-bytes", f"fileb://{IMAGES / 'LICENSES.md'}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **DUMMY})
    assert proc.returncode != 0 and "InvalidImageFormatException" in proc.stderr, proc.stderr


def test_iam_signing_for_api_gateway_uses_execute_api(rekognition):
    """The docs' AuthMode IAM recipe: SigV4 with service `execute-api`, not `rekognition`."""
    client = boto3.client("rekognition", endpoint_url=BASE, region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")
    seen = []

    def sign_for_api_gateway(request, **_):
        request.context.setdefault("signing", {})["signing_name"] = "execute-api"

    client.meta.events.register("before-sign.rekognition.DetectLabels", sign_for_api_gateway)
    client.meta.events.register("before-send.rekognition.DetectLabels",
                                lambda request, **_: seen.append(request.headers["Authorization"]))
    assert names(client.detect_labels(Image={"Bytes": image("chelsea.jpg")})) == ["Cat"]
    auth = seen[0].decode() if isinstance(seen[0], bytes) else seen[0]
    assert f"/{REGION}/execute-api/aws4_request" in auth, auth


SCHEMATHESIS_HOOKS = '''
import json
import schemathesis

# The AWS JSON 1.1 media type is JSON with another name; schemathesis knows only */json and
# */*+json, so it is taught to write and read it.
@schemathesis.serializer("application/x-amz-json-1.1")
def amz_json(ctx, value):
    return json.dumps(value).encode()

@schemathesis.deserializer("application/x-amz-json-1.1")
def amz_json_reader(ctx, response):
    return json.loads(response.content)
'''


def served_document():
    """GET /api/openapi.json (retried: the emulator has answered a lone 500 between tests)."""
    for attempt in range(3):
        try:
            with urllib.request.urlopen(f"{BASE}/api/openapi.json", timeout=60) as response:
                assert response.headers["Content-Type"] == "application/json"
                return json.loads(response.read())
        except urllib.error.HTTPError:
            if attempt == 2:
                raise
            time.sleep(1)


def test_schemathesis_against_the_served_document(tmp_path):
    document = served_document()
    assert document == json.loads((ROOT / "docs" / "openapi.json").read_text())
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(document))
    hooks = tmp_path / "amz_json_hooks.py"
    hooks.write_text(SCHEMATHESIS_HOOKS)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "amz_json_hooks", "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        ["st", "run", str(schema), "--url", BASE,
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance",
         "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "15"),
         "--phases", "examples,coverage,fuzzing", "--request-timeout", "120",
         "--no-color", "--seed", "1"],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "passed" in proc.stdout


def doc_blocks(lang):
    """The fenced `lang` blocks of docs/API.md's examples (those marked `checked`)."""
    text = (ROOT / "docs" / "API.md").read_text()
    return re.findall(rf"```{lang} checked\n(.*?)```", text, flags=re.S)


def run_doc_block(command, block):
    env = {**os.environ, **DUMMY, "URL": BASE, "BUCKET": BUCKET, "AUTH_MODE": "NONE"}
    return subprocess.run(command + [block], capture_output=True, text=True, timeout=300,
                          env=env, cwd=IMAGES)


def test_docs_shell_examples(s3_images):
    blocks = doc_blocks("sh")
    assert len(blocks) >= 4
    for block in blocks:
        proc = run_doc_block(["bash", "-euo", "pipefail", "-c"], block)
        assert proc.returncode == 0, block + proc.stderr
        assert re.search(r"\bcat\b", proc.stdout, re.I), block + proc.stdout


def test_docs_python_examples(s3_images):
    blocks = doc_blocks("python")
    assert len(blocks) >= 3
    for block in blocks:
        proc = run_doc_block([sys.executable, "-c"], block)
        assert proc.returncode == 0, block + proc.stderr
        assert re.search(r"\bcat\b", proc.stdout, re.I), block + proc.stdout
