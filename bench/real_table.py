"""The real-film table of bench/real.sh, from the outputs hipfrac wrote (Python stdlib only).

Usage: python3 bench/real_table.py RUN [RUN...]
A RUN is a folder bench/real.sh filled for one variant:
  NAME                 its first line: the variant's name
  */eval/cases.csv     `hipfrac evaluate` of the real AP hip films (one per fold, or one)
  */eval/any_fracture.json   localisation counts of the same
  */oos/summary.csv    `hipfrac predict` of the out-of-scope films (hand, leg, shoulder; the
                       chest and tibia CRs as PNG)
  rg2/RG2_UNC.json     `hipfrac predict` of the real hip CR RG2
Pools the folds (each film is predicted once, by the model that never saw it) and prints one
row per variant: any-fracture AUC with a 95 % interval by patient bootstrap (2,000
replicates), sensitivity and specificity at the verdict with Wilson intervals, localisation,
hip films assessed, out-of-scope films refused and called a fracture, and RG2's answer.
"""
import csv, glob, json, math, os, random, sys

Z = 1.959963984540054


def wilson(k, n):
    if n == 0:
        return float("nan"), 0.0, 1.0
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return p, max(0.0, centre - half), min(1.0, centre + half)


def auc(pairs):
    pos = [s for s, y in pairs if y]
    neg = [s for s, y in pairs if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def bootstrap_auc(rows, replicates=2000, seed=11):
    by_patient = {}
    for r in rows:
        by_patient.setdefault(r[0], []).append((r[1], r[2]))
    groups = list(by_patient.values())
    rng = random.Random(seed)
    values = []
    for _ in range(replicates):
        sample = [p for _ in groups for p in rng.choice(groups)]
        v = auc(sample)
        if v is not None:
            values.append(v)
    values.sort()
    if not values:
        return float("nan"), float("nan")
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]


def fmt(p, lo, hi):
    return "–" if p != p else f"{p:.2f} ({lo:.2f}–{hi:.2f})"


# RG2 (../shared/data/dicom/dicom_wg04_hip/RG2_UNC, 1760 x 2140): the femoral head's centre
# and the lesser trochanter, in its pixels, read off the film (data/real/rg2 holds its box).
RG2_HEAD = (900, 865)
RG2_LESSER_TROCHANTER = (1060, 1160)


def rg2(run):
    path = os.path.join(run, "rg2", "RG2_UNC.json")
    if not os.path.exists(path):
        return "–"
    j = json.load(open(path))
    if j["verdict"] == "not_assessable":
        return "refused"
    holds = lambda b, p: b[0] <= p[0] <= b[2] and b[1] <= p[1] <= b[3]
    hips = [h for h in j.get("hips", []) if holds(h["bbox"], RG2_HEAD) and holds(h["bbox"], RG2_LESSER_TROCHANTER)]
    found = hips or j.get("hips", [])
    side = found[0]["side"]["side"] if found else "?"
    covered = "hip box holds head + lesser trochanter" if hips else ("hip box misses them" if found else "no hip box")
    return f"{j['verdict']}, {side} hip, {covered}"


def measure(run):
    name = open(os.path.join(run, "NAME")).read().strip()
    cases = []
    for path in sorted(glob.glob(os.path.join(run, "**", "eval", "cases.csv"), recursive=True)):
        cases.extend(csv.DictReader(open(path)))
    scored = [(c["patient"], max(float(c[k]) for k in ("DF", "VF", "SF", "UF")), c["truth"] != "none")
              for c in cases if not c["not_assessable"]]
    value = auc([(s, y) for _, s, y in scored])
    lo, hi = bootstrap_auc(scored) if value is not None else (float("nan"), float("nan"))
    fractured = [c for c in cases if c["truth"] != "none"]
    clear = [c for c in cases if c["truth"] == "none"]
    se = wilson(sum(c["verdict"] != "none" for c in fractured), len(fractured))
    sp = wilson(sum(c["verdict"] == "none" for c in clear), len(clear))
    pointed = localisable = 0
    for path in glob.glob(os.path.join(run, "**", "eval", "any_fracture.json"), recursive=True):
        for section in json.load(open(path)).values():
            n = section.get("localisable", 0)
            localisable += n
            if n and section.get("localised"):
                pointed += round(section["localised"]["value"] * n)
    assessed = sum(not c["not_assessable"] for c in cases)
    oos = []
    for path in sorted(glob.glob(os.path.join(run, "**", "oos", "summary.csv"), recursive=True)):
        oos.extend(r for r in csv.DictReader(open(path)) if not r["error"])
    refused = sum(r["verdict"] == "not_assessable" for r in oos)
    called = sum(r["verdict"] in ("DF", "VF", "SF", "UF") for r in oos)
    return {
        "variant": name,
        "AUC": "–" if value is None else f"{value:.2f} ({lo:.2f}–{hi:.2f})",
        "Se": fmt(*se),
        "Sp": fmt(*sp),
        "localised": f"{pointed}/{localisable}" if localisable else "–",
        "hips assessed": f"{assessed}/{len(cases)} ({fmt(*wilson(assessed, len(cases)))})",
        "out of scope refused": f"{refused}/{len(oos)} ({fmt(*wilson(refused, len(oos)))})",
        "called a fracture": f"{called}/{len(oos)}",
        "RG2": rg2(run),
        "_n": (len(fractured), len(clear)),
    }


rows = [measure(run) for run in sys.argv[1:]]
columns = ["variant", "AUC", "Se", "Sp", "localised", "hips assessed", "out of scope refused", "called a fracture", "RG2"]
print("| " + " | ".join(columns) + " |")
print("|" + "---|" * len(columns))
for r in rows:
    print("| " + " | ".join(r[c] for c in columns) + " |")
if rows:
    f, c = rows[0]["_n"]
    print(f"\nReal AP hip/pelvis films: {f} fractured (FracAtlas; few patients: IMG0002540-2545 are one ID block), {c} without a fracture. "
          "AUC: the image's fracture score (highest class score) over the films assessed, pooled over the folds' models (each film scored once, by the model that never saw it; the folds' scores need not share one scale), 95 % interval by patient bootstrap; "
          "Se/Sp at the verdict (not assessable = no fracture), Wilson 95 % intervals; localised: fractured films called fractured "
          "whose answer's box holds the centre of FracAtlas's box. FracAtlas: CC BY 4.0, Abedeen et al., Sci Data 2023.")
