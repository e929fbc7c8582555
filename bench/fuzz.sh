#!/usr/bin/env bash
# Fuzz every input parser with libFuzzer (cargo fuzz, nightly toolchain), each target seeded
# from real files, under a 1 GB memory limit (a file that needs more is a finding too).
#
#   bench/fuzz.sh [DICOM_SECONDS [OTHER_SECONDS]]     defaults: 600 (dicom, jpeg12) and 120
#   TARGETS="dicom train_config" bench/fuzz.sh        some targets only
#
# Targets (fuzz/fuzz_targets): dicom, png (DICOM/PNG read + decode + display pipeline), jpeg12
# (the in-house 12-bit JPEG decoder), voc, coco, yolo, manifest, train_config (TOML parse and
# range checks), dimse (the DICOM node's command-set decoder, its network input), study_toml
# (reader-study file, loaded and checked), label_map (--label-map files), tokens (the service's
# bearer-token file), operating_points (operating_points.json as a model folder loads it).
# The corpus grows in fuzz/corpus/<target>; crashes land in fuzz/artifacts/<target>/ and fail
# the script. Each crash found becomes a regression test with its input under
# crates/*/tests/data/ (or inline in a unit test).
# A summary (executions, coverage, corpus size, crashes per target) goes to
# bench/out/fuzz-<date>.txt; each target's log in fuzz/logs/. JOBS targets run at once (default:
# one per core). Needs: rustup nightly, ../shared/data/dicom and runs/**/operating_points*.json
# (optional seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
DICOM_SECONDS="${1:-600}"
OTHER_SECONDS="${2:-120}"
DATA="${HIPFRAC_DICOM:-../shared/data/dicom}"
BAD="$(dirname "$DATA")/bad-dicom"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p bench/out
SUMMARY="bench/out/fuzz-$(date +%Y-%m-%d).txt"

# Seeds: the phantom (tiny images, VOC, manifest), its labels as COCO and YOLO, the real
# radiographs under 1 MB, the bad-dicom reproducers, JPEG streams cut from the JPEG files; the
# study file of docs/reader-study.md (as written, and with argon2 hashes from `hipfrac study
# hash-password`), label maps like those of the README and the tests, a tokens file made by
# `hipfrac serve token add`, operating points as calibrate writes them (and those of the models
# under runs/), DIMSE command sets (C-ECHO and C-STORE requests and responses) laid out as
# PS3.7 gives them.
BIN=target/release/hipfrac
[ -x "$BIN" ] || BIN=target/debug/hipfrac
[ -x "$BIN" ] || { cargo build -j2 -p hipfrac --bin hipfrac >&2; BIN=target/debug/hipfrac; }
SEEDS="$(mktemp -d)"
trap 'rm -rf "$SEEDS"' EXIT
"$BIN" phantom --count 4 --size 64 --seed 9 --out "$SEEDS/phantom" >/dev/null 2>&1
"$BIN" labels convert --from voc "$SEEDS/phantom/images" --to coco "$SEEDS/labels.json" >/dev/null 2>&1
"$BIN" labels convert --from voc "$SEEDS/phantom/images" --to yolo "$SEEDS/yolo" >/dev/null 2>&1
add() { local target="$1"; shift; mkdir -p "fuzz/corpus/$target"; for f in "$@"; do [ -f "$f" ] && cp "$f" "fuzz/corpus/$target/seed-$(basename "$f")"; done; return 0; }
add dicom "$SEEDS"/phantom/dicom/*.dcm
if [ -d "$DATA" ]; then
  while IFS= read -r f; do add dicom "$f"; done < <(find "$DATA" -type f -size -1024k ! -name '*.md' ! -name 'SHA256SUMS')
fi
[ -d "$BAD" ] && while IFS= read -r f; do add dicom "$f"; done < <(find "$BAD" -type f -name '*.dcm' -size -1024k)
add png "$SEEDS"/phantom/images/*.png
add voc "$SEEDS"/phantom/images/*.xml
add train_config configs/*.toml
add manifest "$SEEDS/phantom/manifest.csv"
add coco "$SEEDS/labels.json"
add yolo "$SEEDS"/yolo/*.txt
"$BIN" serve token add fuzz-a --tokens "$SEEDS/tokens.tsv" >/dev/null 2>&1
"$BIN" serve token add fuzz-b.2 --tokens "$SEEDS/tokens.tsv" >/dev/null 2>&1
add tokens "$SEEDS/tokens.tsv"
printf 'fractured = fracture   # FracAtlas gives no type\n' > "$SEEDS/fracatlas.map"
printf "# site A's names\nGarden-1 = VF\nGarden 3 = DF\nintertroch stable = SF\n\nsubtroch = UF\nno fracture = none\n" \
  > "$SEEDS/site-a.map"
add label_map "$SEEDS"/*.map
HASH="$(echo "fuzz-seed-password" | "$BIN" study hash-password 2>/dev/null)"
python3 - "$SEEDS" "$HASH" <<'PY'
import json, pathlib, re, struct, sys
seeds, password_hash = pathlib.Path(sys.argv[1]), sys.argv[2]
# study_toml: the example of docs/reader-study.md, as written and with real hashes; the same
# in the sequential design.
blocks = re.findall(r"```toml\n(.*?)```", pathlib.Path("docs/reader-study.md").read_text(), re.S)
if blocks:
    (seeds / "study-docs.toml").write_text(blocks[0])
    if password_hash.startswith("$argon2"):
        study = blocks[0].replace("$argon2id$v=19$...", password_hash)
        (seeds / "study.toml").write_text(study)
        sequential = study.replace('  { name = "III", ai = true, washout_days = 14 },\n', "")
        (seeds / "study-sequential.toml").write_text(sequential.replace("  # { name", "  { name"))
# operating_points: as calibrate and a site's refit write them (serde_json, pretty).
classes = ["DF", "VF", "SF", "UF"]
uncalibrated = {"classes": [{"class": c, "suspicious": 0.25, "fracture": 0.5} for c in classes],
                "vf_priority": 0.35, "target_sensitivity": 0.95, "target_specificity": 0.98,
                "chosen_on": "uncalibrated defaults"}
site = {"classes": [{"class": c, "suspicious": s, "fracture": f}
                    for c, s, f in zip(classes, [0.1507401, 0.05, 0.31, 0.25], [0.37616134, 0.95, 0.31, 0.5])],
        "vf_priority": 1.0, "target_sensitivity": 0.9, "target_specificity": 0.95,
        "chosen_on": "site b: data/site-b.csv (50 images), from data/val.csv (120 images)"}
(seeds / "operating_points.json").write_text(json.dumps(uncalibrated, indent=2))
(seeds / "operating_points.b.json").write_text(json.dumps(site, indent=2))
# dimse: command sets in Implicit VR Little Endian, group length first, tags ascending.
def element(tag, value, pad=b"\0"):
    value += pad * (len(value) % 2)
    return struct.pack("<HHI", 0, tag, len(value)) + value
def command(*elements):
    body = b"".join(elements)
    return element(0x0000, struct.pack("<I", len(body))) + body
us = lambda v: struct.pack("<H", v)
verification, cr = b"1.2.840.10008.1.1", b"1.2.840.10008.5.1.4.1.1.1"
instance = b"1.2.826.0.1.3680043.8.498.10239847562019384756"
dimse = {
    "c-echo-rq": command(element(0x0002, verification), element(0x0100, us(0x0030)), element(0x0110, us(1)),
                         element(0x0800, us(0x0101))),
    "c-echo-rsp": command(element(0x0002, verification), element(0x0100, us(0x8030)), element(0x0120, us(1)),
                          element(0x0800, us(0x0101)), element(0x0900, us(0))),
    "c-store-rq": command(element(0x0002, cr), element(0x0100, us(0x0001)), element(0x0110, us(7)),
                          element(0x0700, us(0)), element(0x0800, us(0)), element(0x1000, instance)),
    "c-store-rq-move": command(element(0x0002, cr), element(0x0100, us(0x0001)), element(0x0110, us(8)),
                               element(0x0700, us(2)), element(0x0800, us(0x0102)), element(0x1000, instance),
                               element(0x1030, b"MOVE_SCU", b" "), element(0x1031, us(3))),
    "c-store-rsp": command(element(0x0002, cr), element(0x0100, us(0x8001)), element(0x0120, us(7)),
                           element(0x0800, us(0x0101)), element(0x0900, us(0)), element(0x1000, instance)),
    "c-store-rsp-refused": command(element(0x0002, cr), element(0x0100, us(0x8001)), element(0x0120, us(7)),
                                   element(0x0800, us(0x0101)), element(0x0900, us(0xC000)),
                                   element(0x0902, b"the data set does not parse", b" "),
                                   element(0x1000, instance)),
}
for name, data in dimse.items():
    (seeds / f"{name}.dimse").write_bytes(data)
PY
add study_toml "$SEEDS"/study*.toml
add operating_points "$SEEDS"/operating_points*.json
i=0
while IFS= read -r f; do
  i=$((i + 1))
  cp "$f" "fuzz/corpus/operating_points/seed-run$i-$(basename "$f")"
done < <(find runs -name 'operating_points*.json' -size -64k 2>/dev/null | sort | head -20)
add dimse "$SEEDS"/*.dimse
mkdir -p fuzz/corpus/jpeg12
if [ -d "$DATA" ]; then
  python3 - "$DATA" fuzz/corpus/jpeg12 <<'PY'
import pathlib, sys
for path in pathlib.Path(sys.argv[1]).rglob("*JPLY*"):
    data = path.read_bytes()
    start, end = data.find(b"\xff\xd8\xff"), data.rfind(b"\xff\xd9")
    if start >= 0 and end > start:
        (pathlib.Path(sys.argv[2]) / f"seed-{path.name}.jpg").write_bytes(data[start:end + 2])
PY
fi

# train_config and operating_points link libtorch (hipfrac-train, hipfrac-infer): the project
# venv's copy (scripts/setup.sh).
TORCH_LIB="$PWD/.venv/lib/python3.11/site-packages/torch/lib"
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd fuzz
cargo +nightly fuzz build -O >&2
# One target per core (JOBS, default: the number of cores): libFuzzer runs one process each.
JOBS="${JOBS:-$(nproc)}"
{
  echo "bench/fuzz.sh $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores: ${DICOM_SECONDS} s for dicom and jpeg12, ${OTHER_SECONDS} s for the others; memory limit 1 GB"
  echo "($JOBS targets at a time; cov = coverage points, ft = features, corpus = inputs kept, crashes = files in artifacts/)"
  printf '%-16s %8s %12s %8s %9s %8s %s\n' target seconds executions cov ft corpus crashes
  echo "(seconds: as run; a target stops at its first crash)"
} > "../$SUMMARY"
fuzz_one() {
  local target="$1" seconds max_len log status=0 started
  started=$(date +%s)
  case "$target" in dicom|jpeg12) seconds="$DICOM_SECONDS"; max_len=262144 ;; png) seconds="$OTHER_SECONDS"; max_len=262144 ;; *) seconds="$OTHER_SECONDS"; max_len=65536 ;; esac
  mkdir -p "artifacts/$target" logs
  log="logs/$target.log"
  cargo +nightly fuzz run -O "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=1024 \
       -timeout=20 -max_len="$max_len" -print_final_stats=1 -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || status=$?
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  features=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  crashes=$(find "artifacts/$target" -type f | wc -l)
  printf '%-16s %8s %12s %8s %9s %8s %s\n' "$target" "$(( $(date +%s) - started ))" "$executions" "$coverage" "$features" "$(ls "corpus/$target" | wc -l)" "$crashes" > "logs/$target.row"
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then tail -30 "$log" >&2; return 1; fi
}
failed=0
running=0
TARGETS="${TARGETS:-dicom jpeg12 png voc coco yolo manifest train_config dimse study_toml label_map tokens operating_points}"
for target in $TARGETS; do
  if [ "$running" -ge "$JOBS" ]; then wait -n || failed=1; running=$((running - 1)); fi
  fuzz_one "$target" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
for target in $TARGETS; do cat "logs/$target.row" >> "../$SUMMARY"; done
cat "../$SUMMARY"
[ "$failed" -eq 0 ] || { echo "fuzzing found crashes: see fuzz/artifacts/" >&2; exit 1; }
