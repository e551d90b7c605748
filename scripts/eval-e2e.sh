#!/usr/bin/env bash
# End-to-end test of the offload evaluation on a small generated collection (12 images): the
# whole study (in-process, `cargo lambda watch`, two emulated links through `detect proxy`,
# two cold-start restarts), then checks of the CSVs and that the report's tables equal what
# the rows give; and the policy study (local / remote / auto over a link that changes mid-run,
# two rounds) on the same 12 images. Last, the committed report against its committed rows.
#
#   scripts/eval-e2e.sh
#
# Ports: S3_PORT (5078), WATCH_PORT (9078), PROXY_PORT (9188, 9189): apart from the
# integration tests' so both can run on one machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export S3_PORT="${S3_PORT:-5078}" WATCH_PORT="${WATCH_PORT:-9078}" PROXY_PORT="${PROXY_PORT:-9188}"
export PROXY_TIMEOUT="${PROXY_TIMEOUT:-600}"
out=target/study/e2e-report
results=target/study/results-small-12

COLD_RESTARTS=2 COLD_IMAGES=4 POLICY_ROUNDS=2 \
  scripts/study.sh --count 12 --seed 3 --out "$out" --policy-count 12 --policy-profiles changing

python3 - "$results" <<'PY'
import csv, pathlib, sys
files = sorted(pathlib.Path(sys.argv[1]).glob("*.csv"))
cold = [f for f in files if "cold-start" in f.name]
files = [f for f in files if f not in cold]
assert len(files) == 5, files
assert [f.name for f in cold] == ["9-cold-start-1.csv", "9-cold-start-2.csv"], cold
for f in cold:
    rows = list(csv.DictReader(f.open()))
    assert len(rows) == 4 and all(r["status"] == "200" for r in rows), (f, rows)
    # The restart's first request meets the cold start (process start + model load).
    assert [r["cold_start"] for r in rows] == ["true", "false", "false", "false"], (f, rows)
    assert float(rows[0]["rtt_ms"]) > max(float(r["rtt_ms"]) for r in rows[1:]), (f, rows)
    # The function reports its own start-up on the cold request only (model load included,
    # so more than nothing, and less than the whole first round trip).
    init = float(rows[0]["init_ms"])
    assert 0 < init < float(rows[0]["rtt_ms"]) and all(r["init_ms"] == "" for r in rows[1:]), (f, rows)
    print(f"{f.name}: cold first request {rows[0]['rtt_ms']} ms (function start-up {init} ms), then warm")
for f in files:
    rows = list(csv.DictReader(f.open()))
    assert len(rows) == 12, (f, len(rows))
    for r in rows:
        assert r["status"] == "200", (f, r)
        assert float(r["rtt_ms"]) > 0 and float(r["inference_ms"]) > 0, (f, r)
        assert int(r["bytes"]) >= 14_000, (f, r)
        if "10mbit" in f.name and "100mbit" not in f.name:
            # 10 Mbit/s: the upload share cannot beat the link's serialization time.
            assert float(r["upload_ms"]) >= int(r["bytes"]) * 8 / 10e3 * 0.9, (f, r)
        if "in-process" in f.name:
            assert r["ran"] == "local" and float(r["upload_ms"]) == 0.0, r
        else:
            assert r["ran"] == "remote", r
    print(f"{f.name}: 12 rows, all 200")
PY
python3 - target/study/results-policy-small-12 "$out/README.md" <<'PY'
import csv, pathlib, sys
files = sorted(pathlib.Path(sys.argv[1]).glob("*.csv"))
assert [f.name for f in files] == [f"1-changing-{p}-{k}.csv" for p in ("auto", "local", "remote") for k in (1, 2)], files
for f in files:
    rows = list(csv.DictReader(f.open()))
    assert len(rows) == 12 and all(r["status"] == "200" for r in rows), f
    policy, round_ = f.stem.split("-")[-2:]
    assert all(r["location"].endswith(f" / {policy} #{round_}") for r in rows), rows[0]
    ran = {r["ran"] for r in rows}
    if policy == "auto":
        assert ran <= {"local", "remote"}, ran
        assert rows[0]["ran"] == "local" and rows[0]["reason"] == "no local estimate yet", rows[0]
        assert rows[1]["ran"] == "remote" and rows[1]["reason"] == "no remote estimate yet", rows[1]
        for r in rows[2:]:
            assert r["reason"].startswith(("predicted", "probe")), r
    else:
        assert ran == {policy}, (f, ran)
    print(f"{f.name}: 12 rows, ran {sorted(ran)}")
table = pathlib.Path(sys.argv[2]).read_text()
assert "## Adaptive offloading" in table, "the policy study is a section of the report"
assert "| changing: good, after 1.5 s bad (emulated) | 2 |" in table, "two interleaved rounds"
assert "oracle: ms/image" in table, table
assert ", 1 vCPU" in table, "the function runs with a Lambda-like CPU share"
PY
detect="${CARGO_TARGET_DIR:-target}/release/detect"
# The report as study.sh wrote it (policy section included) against the rows it was made
# from, then in its committed form: every table re-derived from the gzipped rows beside the report.
"$detect" report --check-only --out "$out" "$results"/*.csv
"$detect" report --check-only --out "$out" "$out"/data/*.csv.gz
"$detect" policy-report --check-only --out "$out/README.md" "$out"/data/policy/*.csv.gz
# And a changed cell fails the check.
bad="$(mktemp -d)"
trap 'rm -rf "$bad"' EXIT
sed 's/^| small | in-process | 12 | /| small | in-process | 13 | /' "$out/README.md" >"$bad/README.md"
if "$detect" report --check-only --out "$bad" "$out"/data/*.csv.gz 2>/dev/null; then
  echo "eval e2e: report --check-only passed a changed report" >&2
  exit 1
fi
# The committed report (docs/evaluation) against its committed rows: every table re-derived.
"$detect" report --check-only --out docs/evaluation docs/evaluation/data/*.csv.gz
"$detect" policy-report --check-only --out docs/evaluation/README.md docs/evaluation/data/policy/*.csv.gz
grep -q "^## Cold starts, measured" "$out/README.md"
grep -q "the function's own part is \*\*.* is outside the function" "$out/README.md"
grep -q "^## The seed's table, filled in by this system" "$out/README.md"
echo "eval e2e: ok"
