#!/usr/bin/env python3
"""Writes crates/dicom/src/deid/table_e1_1.tsv: DICOM PS3.15 Table E.1-1 (Application Level
Confidentiality Profile Attributes), the basic profile's action and each option column.

Source: the standard's table as extracted by innolitics/dicom-standard
(standard/confidentiality_profile_attributes.json at commit 8670abd, "Update standard to
rev2024b": DICOM PS3.15 2024b). Run once when the edition changes:

    git clone https://github.com/innolitics/dicom-standard && \
    python3 scripts/deid_table.py dicom-standard/standard/confidentiality_profile_attributes.json

Columns: tag (GGGG,EEEE; x = any hex digit; private attributes are the row `gggg,eeee`),
basic profile action (D, Z, X, K, C, U or a combination such as X/Z/D), then one column per
option (K keep, C clean, empty: the basic action applies), then the attribute's name.
"""
import json
import sys

EDITION = "2024b"
OPTIONS = [
    ("rtnSafePrivOpt", "retain_safe_private"),
    ("rtnUIDsOpt", "retain_uids"),
    ("rtnDevIdOpt", "retain_device_identity"),
    ("rtnInstIdOpt", "retain_institution_identity"),
    ("rtnPatCharsOpt", "retain_patient_characteristics"),
    ("rtnLongFullDatesOpt", "retain_long_full_dates"),
    ("rtnLongModifDatesOpt", "retain_long_modified_dates"),
    ("cleanDescOpt", "clean_descriptors"),
    ("cleanStructContOpt", "clean_structured_content"),
    ("cleanGraphOpt", "clean_graphics"),
]


def tag_of(entry):
    if entry["id"].startswith("gggg"):
        return "gggg,eeee"
    t = entry["id"].lower()
    return f"{t[:4]},{t[4:]}"


def main(path, out="crates/dicom/src/deid/table_e1_1.tsv"):
    rows = json.load(open(path, encoding="utf-8"))
    lines = [f"# DICOM PS3.15 {EDITION} Table E.1-1, from innolitics/dicom-standard (scripts/deid_table.py); {len(rows)} attributes",
             "\t".join(["tag", "basic"] + [name for _, name in OPTIONS] + ["name"])]
    for e in sorted(rows, key=tag_of):
        lines.append("\t".join([tag_of(e), e["basicProfile"]] + [e.get(key, "") for key, _ in OPTIONS] + [" ".join(e["name"].split())]))
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(rows)} attributes")


if __name__ == "__main__":
    main(*sys.argv[1:])
