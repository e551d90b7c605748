#!/usr/bin/env bash
# Run detection over images already in the bucket, with S3 Batch Operations (AWS's engine for
# millions of objects: it invokes the function once per object, retries TemporaryFailure tasks
# and writes a completion report). The trigger only sees new uploads; this is for the rest.
#
#   scripts/backfill.sh --stack lambda-detect [--prefix incoming/] [--dry-run]
#   scripts/backfill.sh --bucket B --role-arn R --function-arn F [--prefix P]
#   scripts/backfill.sh --stack lambda-detect --inventory s3://B/batch/manifests/.../manifest.json
#
# Options:
#   --stack NAME         read BucketName, BatchOperationsRoleArn, DetectFunctionArn from the
#                        stack's outputs (template.yaml)
#   --bucket, --role-arn, --function-arn   the same, given directly (override the stack's)
#   --prefix P           keys to process (default incoming/: the function reads only there)
#   --inventory URI      use an S3 Inventory report (its manifest.json) instead of listing the
#                        bucket: the better choice past a few million objects. The inventory's
#                        destination must be under batch/manifests/ of the bucket, which is all
#                        the Batch Operations role may read.
#   --priority N         job priority (default 10)
#   --dry-run            build and upload nothing; print the manifest size and the create-job call
#
# Without --inventory the manifest is built from list-objects-v2 (image extensions only, any
# case) and uploaded to batch/manifests/; the report (failed tasks only) goes to batch/reports/.
# Needs the AWS CLI (v1 or v2) and python3; credentials from the standard chain.
set -euo pipefail

die() { echo "backfill: $*" >&2; exit 1; }

stack="" bucket="" role_arn="" function_arn="" prefix="incoming/" inventory="" priority=10 dry_run=0
while (($#)); do
  case "$1" in
    --stack) stack="$2"; shift 2 ;;
    --bucket) bucket="$2"; shift 2 ;;
    --role-arn) role_arn="$2"; shift 2 ;;
    --function-arn) function_arn="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --inventory) inventory="$2"; shift 2 ;;
    --priority) priority="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
command -v aws >/dev/null || die "the AWS CLI is missing (https://aws.amazon.com/cli/)"

output() { # stack output value
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
if [[ -n "$stack" ]]; then
  [[ -n "$bucket" ]] || bucket="$(output BucketName)"
  [[ -n "$role_arn" ]] || role_arn="$(output BatchOperationsRoleArn)"
  [[ -n "$function_arn" ]] || function_arn="$(output DetectFunctionArn)"
fi
[[ -n "$bucket" && -n "$role_arn" && -n "$function_arn" ]] ||
  die "need --stack, or --bucket, --role-arn and --function-arn"

account="$(aws sts get-caller-identity --query Account --output text)"
token="backfill-$(date -u +%Y%m%dT%H%M%SZ)-$RANDOM"

if [[ -n "$inventory" ]]; then
  [[ "$inventory" =~ ^s3://([^/]+)/(.+manifest\.json)$ ]] || die "--inventory must be s3://bucket/.../manifest.json"
  manifest_bucket="${BASH_REMATCH[1]}" manifest_key="${BASH_REMATCH[2]}"
  format='"Format":"S3InventoryReport_CSV_20161130"'
  echo "backfill: using the inventory report s3://$manifest_bucket/$manifest_key"
else
  manifest_bucket="$bucket" manifest_key="batch/manifests/$token.csv"
  format='"Format":"S3BatchOperations_CSV_20180820","Fields":["Bucket","Key"]'
  manifest="$(mktemp)"
  trap 'rm -f "$manifest"' EXIT
  # One "bucket,key" line per image; keys URL-encoded, as the CSV manifest format requires.
  # The CLI pages through list-objects-v2 itself; the keys stream through python.
  aws s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix" --query 'Contents[].[Key]' \
      --output json |
    BUCKET="$bucket" python3 -c '
import json, os, sys, urllib.parse
IMAGES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
bucket = os.environ["BUCKET"]
for row in json.load(sys.stdin) or []:
    key = row[0]
    if key.lower().endswith(IMAGES):
        print(bucket + "," + urllib.parse.quote(key, safe="/"))
' >"$manifest"
  count="$(wc -l <"$manifest")"
  echo "backfill: $count images under s3://$bucket/$prefix"
  ((count > 0)) || die "nothing to do"
  if ((dry_run)); then
    echo "backfill: dry run: the manifest would go to s3://$manifest_bucket/$manifest_key; first lines:"
    head -3 "$manifest"
  else
    aws s3api put-object --bucket "$manifest_bucket" --key "$manifest_key" --body "$manifest" \
      --content-type text/csv >/dev/null
  fi
fi

etag='"MANIFEST-ETAG"'
if ! ((dry_run)); then
  etag="$(aws s3api head-object --bucket "$manifest_bucket" --key "$manifest_key" --query ETag --output text)"
fi
partition="$(cut -d: -f2 <<<"$role_arn")"
args=(s3control create-job --account-id "$account" --no-confirmation-required
  --priority "$priority" --role-arn "$role_arn" --client-request-token "$token"
  --description "lambda-detect backfill of s3://$bucket/$prefix"
  --operation "{\"LambdaInvoke\":{\"FunctionArn\":\"$function_arn\",\"InvocationSchemaVersion\":\"2.0\"}}"
  --manifest "{\"Spec\":{$format},\"Location\":{\"ObjectArn\":\"arn:$partition:s3:::$manifest_bucket/$manifest_key\",\"ETag\":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1].strip("\"")))' "$etag")}}"
  --report "{\"Bucket\":\"arn:$partition:s3:::$bucket\",\"Prefix\":\"batch/reports\",\"Format\":\"Report_CSV_20180820\",\"Enabled\":true,\"ReportScope\":\"FailedTasksOnly\"}")
if ((dry_run)); then
  printf 'backfill: dry run: would run\n  aws'
  printf ' %q' "${args[@]}"
  echo
  exit 0
fi
job_id="$(aws "${args[@]}" --query JobId --output text)"
echo "backfill: created job $job_id. Follow it with:"
echo "  aws s3control describe-job --account-id $account --job-id $job_id --query 'Job.[Status,ProgressSummary]'"
echo "Failed tasks are listed under s3://$bucket/batch/reports/job-$job_id/ when it completes."
