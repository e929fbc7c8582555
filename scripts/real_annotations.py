"""Builds data/real from the hand-drawn hip boxes and FracAtlas's own fracture boxes.

Inputs: data/real/fracatlas/hip-boxes.csv (one row per hip box, drawn by looking at each
film; see data/real/README.md) and ../shared/data/real/fracatlas (the films, manifest.csv and
FracAtlas's YOLO fracture boxes). Outputs, in data/real/fracatlas:
  annotations/<id>.xml  LabelImg VOC: `hip` boxes (each widened to hold a fracture box on
                        its side, as the phantom's are) and `fracture` boxes (type unknown)
  images/<id>.jpg       the films of at most 300 KB, byte for byte (CC BY 4.0, see README)
  hips.csv              the AP hip/pelvis films copied here (hipfrac manifest:
                        image,annotation,patient,site,label)
  out-of-scope.csv      the hand/leg/shoulder films copied here (label none, no annotation)
  hips-all.csv, out-of-scope-all.csv   the same for every film of ../shared/data/real
                        (bench/real.sh points images/ at the shared folder)
Patients are FracAtlas ID blocks (IDs at most 5 apart form one block: neighbouring IDs are
often one patient). Needs Pillow (image sizes with the EXIF orientation applied).
Run from the repository root: python3 scripts/real_annotations.py
"""
import csv, pathlib, shutil, sys
from PIL import Image, ImageOps

root = pathlib.Path(__file__).resolve().parent.parent
shared = root.parent / "shared/data/real/fracatlas"
out = root / "data/real/fracatlas"
MAX_COPY = 300_000

rows = list(csv.DictReader(open(shared / "manifest.csv")))
ids = sorted(int(pathlib.Path(r["image"]).stem[3:]) for r in rows)
block, previous, blocks = 0, None, {}
for i in ids:
    if previous is not None and i - previous > 5:
        block += 1
    blocks[i] = f"FA{block:03d}"
    previous = i

hips = {}
for r in csv.DictReader(open(out / "hip-boxes.csv")):
    if r["xmin"]:
        hips.setdefault(r["image"], []).append([int(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")])


def voc(name, width, height, hip_boxes, fractures):
    objects = "".join(
        f"""	<object>
		<name>{label}</name>
		<pose>Unspecified</pose>
		<truncated>0</truncated>
		<difficult>0</difficult>
		<bndbox>
			<xmin>{b[0] + 1}</xmin>
			<ymin>{b[1] + 1}</ymin>
			<xmax>{b[2]}</xmax>
			<ymax>{b[3]}</ymax>
		</bndbox>
	</object>
"""
        for label, boxes in (("fracture", fractures), ("hip", hip_boxes))
        for b in boxes
    )
    return f"""<annotation>
	<folder>images</folder>
	<filename>{name}</filename>
	<path>images/{name}</path>
	<source>
		<database>FracAtlas (CC BY 4.0); hip boxes drawn for hipfrac</database>
	</source>
	<size>
		<width>{width}</width>
		<height>{height}</height>
		<depth>1</depth>
	</size>
	<segmented>0</segmented>
{objects}</annotation>
"""


(out / "annotations").mkdir(parents=True, exist_ok=True)
(out / "images").mkdir(parents=True, exist_ok=True)
hip_rows, other_rows = [], []
for r in rows:
    path = shared / r["image"]
    name = path.name
    stem = path.stem
    ident = int(stem[3:])
    with Image.open(path) as im:
        width, height = ImageOps.exif_transpose(im).size
    if path.stat().st_size <= MAX_COPY:
        shutil.copyfile(path, out / "images" / name)
    if r["label"] == "not_hip":
        other_rows.append([f"images/{name}", "", blocks[ident], "fracatlas", "none"])
        continue
    boxes = [list(b) for b in hips[stem]]
    fractures = []
    box_file = shared / "boxes" / f"{stem}.txt"
    for line in box_file.read_text().split("\n") if box_file.exists() else []:
        parts = line.split()
        if len(parts) != 5:
            continue
        cx, cy, w, h = (float(v) for v in parts[1:])
        f = [max(0, round((cx - w / 2) * width)), max(0, round((cy - h / 2) * height)),
             min(width, round((cx + w / 2) * width)), min(height, round((cy + h / 2) * height))]
        fractures.append(f)
        # The hip box on the fracture's side holds it (as the phantom's hip boxes do).
        centre = ((f[0] + f[2]) / 2, (f[1] + f[3]) / 2)
        nearest = min(boxes, key=lambda b: (max(b[0] - centre[0], 0, centre[0] - b[2]) ** 2
                                            + max(b[1] - centre[1], 0, centre[1] - b[3]) ** 2,
                                            abs((b[0] + b[2]) / 2 - centre[0])))
        nearest[:] = [min(nearest[0], f[0]), min(nearest[1], f[1]), max(nearest[2], f[2]), max(nearest[3], f[3])]
    if (r["label"] == "fracture") != bool(fractures):
        sys.exit(f"{stem}: label {r['label']} but {len(fractures)} fracture boxes")
    (out / "annotations" / f"{stem}.xml").write_text(voc(name, width, height, boxes, fractures))
    hip_rows.append([f"images/{name}", f"annotations/{stem}.xml", blocks[ident], "fracatlas",
                     "fracture" if fractures else "none"])

header = ["image", "annotation", "patient", "site", "label"]
copied = lambda table: [r for r in table if (out / r[0]).exists()]
for file, table in (("hips-all.csv", hip_rows), ("out-of-scope-all.csv", other_rows),
                    ("hips.csv", copied(hip_rows)), ("out-of-scope.csv", copied(other_rows))):
    with open(out / file, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(table)
print(f"{len(hip_rows)} AP films, {sum(len(hips[pathlib.Path(r[0]).stem]) for r in hip_rows)} hip boxes, "
      f"{sum(1 for r in hip_rows if r[4] == 'fracture')} fractured; {len(other_rows)} out of scope; "
      f"{len(set(blocks.values()))} ID blocks")
