"""The function starts in a debug build under plain `cargo lambda watch` (no --release), the way
cargo-lambda users run it, and answers GET /api/health: once with no AWS_* variables in the
environment and once with a region and dummy credentials. (aws-smithy asserts in debug builds
that every SDK client has an HTTP client; a default provider chain built without one panicked
at start-up in every debug build.)

Each case starts its own watch on a port of its own (WATCH_PORT + 2 and + 3) and stops it.
scripts/integration-test.sh builds the debug binary once beforehand; without it the first
start compiles it.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PORT = int(os.environ.get("WATCH_PORT", "9055"))
# A debug build loads and converts the model far slower than a release build.
START_TIMEOUT_S = 600

CASES = {
    "no-aws-env": (PORT + 2, {}),
    "region-and-dummy-credentials": (PORT + 3, {
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
    }),
}


@contextlib.contextmanager
def debug_watch(port, aws_env):
    """`cargo lambda watch` (debug) with only `aws_env` as AWS_* variables; yields the log path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(aws_env)
    log_path = ROOT / "target" / "local-function" / f"watch-debug-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["cargo", "lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, log_path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def wait_for_health(proc, port, log_path):
    """The health reply once the function answers; fails if watch exits or time runs out."""
    url = f"http://127.0.0.1:{port}/lambda-url/detect-lambda/api/health"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=120) as resp:
                if resp.status == 200:
                    return resp.read()
        except OSError:
            pass
        assert proc.poll() is None, f"cargo lambda watch exited:\n{log_path.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"no health reply:\n{log_path.read_text()[-4000:]}"
        time.sleep(1)


@pytest.mark.parametrize("case", list(CASES))
def test_debug_build_starts_and_answers_health(case):
    port, aws_env = CASES[case]
    with debug_watch(port, aws_env) as (proc, log_path):
        body = wait_for_health(proc, port, log_path)
        assert json.loads(body)["status"] == "ok", body
        log = log_path.read_text()
        assert "panicked" not in log, log[-4000:]
        assert "http_client is required" not in log, log[-4000:]
        assert proc.poll() is None, "watch stopped after answering"
    assert proc.poll() is not None, "watch still running after the test stopped it"
