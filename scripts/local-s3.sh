#!/usr/bin/env bash
# Local S3 for development and tests: a moto server (real S3 wire protocol, no Docker) with
# the bucket the event fixtures name and the sample photos under incoming/.
#
#   scripts/local-s3.sh [start]   start (or reuse) the server, create the bucket, upload images
#   scripts/local-s3.sh stop      stop the server this script started
#   scripts/local-s3.sh status    say whether it runs, and where
#
# Environment: S3_PORT (5005), S3_HOST (127.0.0.1), BUCKET (lambda-detect-local),
# LOCAL_S3_DIR (target/local-s3: pid file and log), S3_START_TIMEOUT (seconds, 30).
# Needs moto_server and boto3: python3 -m pip install 'moto[server]' (scripts/install-deps.sh).
#
# The server keeps everything in memory: a restart starts empty (start uploads again).
# Its bucket notifications cannot invoke the function; drive the trigger with events/s3-*.json.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S3_HOST="${S3_HOST:-127.0.0.1}"
S3_PORT="${S3_PORT:-5005}"
BUCKET="${BUCKET:-lambda-detect-local}"
STATE_DIR="${LOCAL_S3_DIR:-$REPO_ROOT/target/local-s3}"
START_TIMEOUT="${S3_START_TIMEOUT:-30}"
PID_FILE="$STATE_DIR/moto-$S3_PORT.pid"
LOG_FILE="$STATE_DIR/moto-$S3_PORT.log"
ENDPOINT="http://$S3_HOST:$S3_PORT"
IMAGES_DIR="$REPO_ROOT/tests/fixtures/images"

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

die() { echo "local-s3: $*" >&2; exit 1; }

answers() { curl -s -o /dev/null --max-time 2 "$ENDPOINT/" ; }

# PID of the server we started, if it still runs.
our_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a stale pid file whose pid now belongs to another program.
  if [[ -r "/proc/$pid/cmdline" ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q moto_server; then
    return 1
  fi
  echo "$pid"
}

print_env() {
  cat <<EOF
Local S3 at $ENDPOINT (bucket $BUCKET). Export:
  export S3_ENDPOINT_URL=$ENDPOINT
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  export ALLOWED_BUCKETS=$BUCKET
EOF
}

# Create the bucket (if missing) and upload the sample images under incoming/ (if missing or
# changed). Besides the photos, a copy of astronaut.jpg goes to "incoming/my photo été.jpg":
# events/s3-multi.json names it (URL-encoded) to exercise key decoding.
seed() {
  ENDPOINT="$ENDPOINT" BUCKET="$BUCKET" IMAGES_DIR="$IMAGES_DIR" python3 - <<'PY'
import hashlib, os, sys
try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:
    sys.exit("local-s3: boto3 is missing: python3 -m pip install 'moto[server]'")

endpoint, bucket, images = os.environ["ENDPOINT"], os.environ["BUCKET"], os.environ["IMAGES_DIR"]
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
try:
    s3.head_bucket(Bucket=bucket)
except ClientError:
    s3.create_bucket(Bucket=bucket)
    print(f"created bucket {bucket}")

uploads = {}
if os.path.isdir(images):
    for name in sorted(os.listdir(images)):
        if name.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
            uploads[f"incoming/{name}"] = os.path.join(images, name)
    if "incoming/astronaut.jpg" in uploads:
        uploads["incoming/my photo été.jpg"] = uploads["incoming/astronaut.jpg"]
if not uploads:
    print(f"local-s3: warning: no images in {os.path.relpath(images)}; bucket left empty", file=sys.stderr)

types = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
sent = 0
for key, path in uploads.items():
    with open(path, "rb") as f:
        data = f.read()
    etag = hashlib.md5(data).hexdigest()
    try:
        if s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == etag:
            continue
    except ClientError:
        pass
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=types[os.path.splitext(key)[1].lower()])
    sent += 1
print(f"bucket {bucket}: {len(uploads)} images under incoming/ ({sent} uploaded now)")
PY
}

start() {
  command -v curl >/dev/null || die "curl is missing"
  local pid
  if pid="$(our_pid)"; then
    answers || die "server (pid $pid) runs but does not answer at $ENDPOINT; see $LOG_FILE or run '$0 stop'"
    echo "local-s3: reusing server pid $pid on $ENDPOINT"
  elif answers; then
    # Something else already serves this port: use it if it speaks S3, but never manage it.
    echo "local-s3: $ENDPOINT already answers (not started by this script); using it"
  else
    command -v moto_server >/dev/null || die "moto_server not found: python3 -m pip install 'moto[server]' (or scripts/install-deps.sh)"
    mkdir -p "$STATE_DIR"
    # setsid: own process group, so the server outlives this shell and stop can end it alone.
    setsid moto_server -H "$S3_HOST" -p "$S3_PORT" >"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    local waited=0
    until answers; do
      if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$PID_FILE"
        tail -n 20 "$LOG_FILE" >&2 || true
        die "moto_server exited during start-up (log: $LOG_FILE)"
      fi
      if (( waited >= START_TIMEOUT * 4 )); then
        kill "$pid" 2>/dev/null || true
        rm -f "$PID_FILE"
        tail -n 20 "$LOG_FILE" >&2 || true
        die "moto_server did not answer at $ENDPOINT within ${START_TIMEOUT}s; stopped it (log: $LOG_FILE)"
      fi
      sleep 0.25
      waited=$((waited + 1))
    done
    echo "local-s3: started moto_server pid $pid on $ENDPOINT (log: $LOG_FILE)"
  fi
  seed
  print_env
}

stop() {
  local pid
  if pid="$(our_pid)"; then
    kill "$pid"
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    echo "local-s3: stopped pid $pid"
  else
    rm -f "$PID_FILE"
    echo "local-s3: not running (no live pid in $PID_FILE)"
  fi
}

status() {
  local pid
  if pid="$(our_pid)"; then
    if answers; then
      echo "local-s3: running, pid $pid, $ENDPOINT, bucket $BUCKET"
      print_env
      return 0
    fi
    echo "local-s3: pid $pid alive but $ENDPOINT does not answer (log: $LOG_FILE)"
    return 1
  elif answers; then
    echo "local-s3: $ENDPOINT answers, but not a server started by this script"
    return 0
  fi
  echo "local-s3: not running"
  return 3
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  -h|--help|help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
  *) die "unknown command '$1' (use start, stop or status)" ;;
esac
