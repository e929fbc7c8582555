"""Writes the JPEG test films in crates/cli/tests/data/jpeg (needs Pillow).

A 96 x 64 grey film with a bright block in its top-left corner when shown upright, stored
as: baseline grey, progressive grey, progressive colour (a faint tint), upright pixels
stored turned by 90 degrees with EXIF Orientation 6 and 8 (a viewer turns them back), and a
baseline file cut short. Deterministic: rerunning writes the same bytes.
"""
import io, pathlib
from PIL import Image

out = pathlib.Path(__file__).resolve().parent.parent / "crates/cli/tests/data/jpeg"
out.mkdir(parents=True, exist_ok=True)
W, H = 96, 64
film = Image.new("L", (W, H), 40)
for y in range(H):
    for x in range(W):
        film.putpixel((x, y), 40 + (x + y) // 2)
film.paste(230, (4, 4, 28, 20))
film.save(out / "baseline.jpg", quality=92)
film.save(out / "progressive.jpg", quality=92, progressive=True)
Image.merge("RGB", (film, film, film.point(lambda v: max(v - 6, 0)))).save(
    out / "colour-progressive.jpg", quality=92, progressive=True, subsampling=0)
# EXIF 6: the stored pixels must be turned 90 degrees clockwise to show the film upright,
# so store the upright film turned 90 degrees anticlockwise.
for tag, turned in ((6, film.transpose(Image.Transpose.ROTATE_90)), (8, film.transpose(Image.Transpose.ROTATE_270))):
    exif = Image.Exif()
    exif[0x0112] = tag
    turned.save(out / f"exif-orientation-{tag}.jpg", quality=92, exif=exif.tobytes())
whole = io.BytesIO()
film.save(whole, format="JPEG", quality=92)
data = whole.getvalue()
(out / "truncated.jpg").write_bytes(data[: len(data) * 2 // 3])
