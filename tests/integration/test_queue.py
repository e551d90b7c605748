"""S3 -> SQS -> function, with real components on loopback: moto_server's S3 sends the upload
notifications to moto_server's SQS queue (prefix incoming/, as template.yaml configures it),
the test receives them and hands them to the function the way Lambda's SQS poller does
(`cargo lambda invoke` with an SQS event built from the received messages; messages the
partial batch response does not name are deleted, the named ones return after the visibility
timeout), and a redrive policy moves a message that keeps failing to the dead-letter queue.

Run through scripts/integration-test.sh (it starts moto_server and the function).
"""

import json
import os
import subprocess
import time
import urllib.parse
import uuid

import boto3
import pytest

from test_failures import exists
from test_lambda_local import IMAGES, PORT, ROOT, labels

QUEUE_BUCKET = "lambda-detect-queue-test"
MAX_RECEIVE_COUNT = 2
# Short, so that failed messages come back quickly; the template derives it from the timeout.
VISIBILITY_S = 2


def client(service):
    return boto3.client(service, endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture(scope="module")
def s3():
    return client("s3")


@pytest.fixture(scope="module")
def sqs():
    return client("sqs")


@pytest.fixture
def queue(s3, sqs):
    """A bucket notifying a fresh queue (with its dead-letter queue) about incoming/ uploads.
    Yields (queue url, queue arn, dead-letter queue url, the s3:TestEvent message)."""
    name = f"uploads-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(VISIBILITY_S),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
    })["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    try:
        s3.create_bucket(Bucket=QUEUE_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_bucket_notification_configuration(Bucket=QUEUE_BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}}]})
    test_events = receive(sqs, url, 1)
    assert json.loads(test_events[0]["Body"])["Event"] == "s3:TestEvent"
    yield url, arn, dlq_url, test_events[0]
    s3.put_bucket_notification_configuration(Bucket=QUEUE_BUCKET, NotificationConfiguration={})
    sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=dlq_url)


def receive(sqs, url, count, timeout=15):
    """At least `count` messages (fewer only if the queue stays empty until `timeout`)."""
    messages, deadline = [], time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  WaitTimeSeconds=1).get("Messages", [])
        messages += got
    return messages


def invoke_json(event, tmp_path, port=PORT):
    """`cargo lambda invoke` with an event that must succeed; returns the function's answer."""
    path = tmp_path / f"event-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(event))
    proc = subprocess.run(
        ["cargo", "lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
         "--data-file", str(path), "detect-lambda"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def lambda_event(messages, arn):
    """The event Lambda's SQS poller builds from received messages."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1",
    } for m in messages]}


def deliver(sqs, url, arn, messages, tmp_path):
    """Invoke the function with a batch and settle it as the poller does: delete the messages
    not listed in batchItemFailures. Returns the set of failed message ids."""
    response = invoke_json(lambda_event(messages, arn), tmp_path)
    assert set(response) == {"batchItemFailures"}, response
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for m in messages:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return failed


def key_of(message):
    """The decoded object key an S3 notification message is about."""
    record = json.loads(message["Body"])["Records"][0]
    return urllib.parse.unquote_plus(record["s3"]["object"]["key"])


def put(s3, key, body):
    s3.put_object(Bucket=QUEUE_BUCKET, Key=key, Body=body)


def result(s3, key):
    return json.loads(s3.get_object(Bucket=QUEUE_BUCKET, Key=f"detections/{key}.json")["Body"].read())


def test_partial_batch_names_exactly_the_failed_messages_and_redelivery_succeeds(s3, sqs, queue, tmp_path):
    url, arn, _, test_event = queue
    run = f"incoming/q-{uuid.uuid4().hex[:8]}"
    good, corrupt, missing = f"{run}/IMG_0001.JPG", f"{run}/broken photo.jpg", f"{run}/gone.jpg"
    cat = (IMAGES / "chelsea.jpg").read_bytes()
    put(s3, good, cat)
    put(s3, corrupt, cat[:300])  # a JPEG cut off after its headers
    put(s3, missing, cat)
    put(s3, f"outside-{run}.jpg", cat)  # not under incoming/: no notification
    s3.delete_object(Bucket=QUEUE_BUCKET, Key=missing)  # gone by the time it is read

    messages = receive(sqs, url, 3)
    by_key = {key_of(m): m for m in messages}
    assert set(by_key) == {good, corrupt, missing}, sorted(by_key)

    # The test event S3 sent when the notification was set up rides in the same batch.
    failed = deliver(sqs, url, arn, [test_event, *messages], tmp_path)
    assert failed == {by_key[corrupt]["MessageId"], by_key[missing]["MessageId"]}
    stored = result(s3, good)
    assert stored["status"] == 200 and labels(stored) == ["cat"], stored
    assert stored["source"]["key"] == good
    assert not exists(s3, f"detections/{corrupt}.json", QUEUE_BUCKET)
    assert not exists(s3, f"detections/{missing}.json", QUEUE_BUCKET)

    # Fix both objects, then let the queue deliver the two failed messages again (the fixes
    # also notify: those new messages are settled too).
    put(s3, corrupt, cat)
    put(s3, missing, cat)
    time.sleep(VISIBILITY_S + 0.5)
    again = receive(sqs, url, 4)
    redelivered = [m for m in again if m["MessageId"] in failed]
    assert len(redelivered) == 2 and all(int(m["Attributes"]["ApproximateReceiveCount"]) == 2
                                         for m in redelivered), again
    assert deliver(sqs, url, arn, again, tmp_path) == set()
    for key in (corrupt, missing):
        assert labels(result(s3, key)) == ["cat"]
    time.sleep(VISIBILITY_S + 0.5)
    assert receive(sqs, url, 1, timeout=3) == [], "every message was settled"


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(s3, sqs, queue, tmp_path):
    url, arn, dlq_url, test_event = queue
    assert deliver(sqs, url, arn, [test_event], tmp_path) == set(), "a test event alone is acknowledged"
    key = f"incoming/q-{uuid.uuid4().hex[:8]}/never-fixed.png"
    put(s3, key, b"\x89PNG\r\n\x1a\n not really")
    for attempt in range(1, MAX_RECEIVE_COUNT + 1):
        messages = receive(sqs, url, 1)
        assert [key_of(m) for m in messages] == [key], f"delivery {attempt}"
        assert deliver(sqs, url, arn, messages, tmp_path) == {messages[0]["MessageId"]}
        time.sleep(VISIBILITY_S + 0.5)
    assert receive(sqs, url, 1, timeout=3) == [], "no delivery after the maximum receive count"
    parked = receive(sqs, dlq_url, 1)
    assert [key_of(m) for m in parked] == [key]
    assert not exists(s3, f"detections/{key}.json", QUEUE_BUCKET)
