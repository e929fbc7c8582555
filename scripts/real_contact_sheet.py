"""Contact sheet of the real hip boxes (data/real): every AP film with its `hip` boxes (green)
and FracAtlas's fracture boxes (red), and RG2. Needs Pillow, numpy and pydicom (for RG2).
Run from the repository root: python3 scripts/real_contact_sheet.py OUT.png
"""
import sys, pathlib, xml.etree.ElementTree as ET
from PIL import Image, ImageDraw, ImageOps

root = pathlib.Path(__file__).resolve().parent.parent
shared = root.parent / "shared/data"
ann = root / "data/real/fracatlas/annotations"
tiles = []
for xml in sorted(ann.glob("*.xml")):
    tree = ET.parse(xml)
    name = tree.findtext("filename")
    with Image.open(shared / "real/fracatlas/images" / name) as im:
        film = ImageOps.exif_transpose(im).convert("RGB")
    boxes = [(o.findtext("name"), [int(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
             for o in tree.findall("object")]
    tiles.append((xml.stem, film, boxes))
try:
    import numpy as np, pydicom
    ds = pydicom.dcmread(shared / "dicom/dicom_wg04_hip/RG2_UNC")
    a = np.clip((ds.pixel_array.astype(float) - 510.5) / 1023 + 0.5, 0, 1) * 255
    tree = ET.parse(root / "data/real/rg2/RG2_UNC.xml")
    boxes = [(o.findtext("name"), [int(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
             for o in tree.findall("object")]
    tiles.append(("RG2", Image.fromarray(a.astype("uint8")).convert("RGB"), boxes))
except ImportError:
    pass
T = 150
cols = 10
rows = (len(tiles) + cols - 1) // cols
sheet = Image.new("RGB", (cols * T, rows * (T + 14)), (255, 255, 255))
for k, (name, film, boxes) in enumerate(tiles):
    s = T / max(film.size)
    thumb = film.resize((round(film.width * s), round(film.height * s)))
    d = ImageDraw.Draw(thumb)
    for label, (x0, y0, x1, y1) in boxes:
        colour = (0, 220, 0) if label == "hip" else (255, 40, 40)
        d.rectangle([(x0 - 1) * s, (y0 - 1) * s, x1 * s, y1 * s], outline=colour, width=2)
    x, y = (k % cols) * T, (k // cols) * (T + 14)
    sheet.paste(thumb, (x + (T - thumb.width) // 2, y))
    ImageDraw.Draw(sheet).text((x + 4, y + T + 1), name, fill=(0, 0, 0))
sheet.quantize(colors=128).save(sys.argv[1], optimize=True)
print(f"{len(tiles)} films on {sys.argv[1]}")
