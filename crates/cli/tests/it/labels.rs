use crate::support::*;
use hipfrac_core::{BBox, FractureClass, Label};
use hipfrac_data::{voc, Annotation, LabelMap, Object};
use hipfrac_dicom::png_io::{write_png, GreyPixels};

#[test]
fn voc_to_coco_to_yolo_to_voc_is_lossless() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let cases = [
        (
            "a",
            1024,
            768,
            vec![(FractureClass::DisplacedNeck, BBox::new(100.0, 200.0, 333.0, 407.0))],
        ),
        (
            "b",
            2140,
            1760,
            vec![
                (
                    FractureClass::UnstableIntertrochanteric,
                    BBox::new(0.0, 0.0, 2140.0, 1760.0),
                ),
                (
                    FractureClass::StableIntertrochanteric,
                    BBox::new(17.0, 19.0, 23.0, 29.0),
                ),
            ],
        ),
        ("c", 333, 517, vec![]),
    ];
    let mut originals = Vec::new();
    for (name, width, height, boxes) in &cases {
        write_png(
            &images.join(format!("{name}.png")),
            *width,
            *height,
            GreyPixels::Eight(&vec![0; (*width * *height) as usize]),
        )
        .unwrap();
        let objects = boxes
            .iter()
            .map(|(c, b)| Object {
                label: Label::Fracture(*c),
                bbox: *b,
                truncated: false,
                difficult: false,
            })
            .collect();
        let annotation = Annotation {
            filename: format!("{name}.png"),
            width: *width,
            height: *height,
            depth: 1,
            objects,
            hips: vec![],
        };
        voc::write(
            &images.join(format!("{name}.xml")),
            &voc::VocFile::new(annotation.clone(), "images"),
        )
        .unwrap();
        originals.push(annotation);
    }
    let coco = dir.path().join("labels.json");
    let yolo = dir.path().join("yolo");
    let back = dir.path().join("back");
    hipfrac()
        .args(["labels", "convert", "--from", "voc"])
        .arg(&images)
        .args(["--to", "coco"])
        .arg(&coco)
        .assert()
        .success();
    hipfrac()
        .args(["labels", "convert", "--from", "coco"])
        .arg(&coco)
        .args(["--to", "yolo"])
        .arg(&yolo)
        .assert()
        .success();
    hipfrac()
        .args(["labels", "convert", "--from", "yolo"])
        .arg(&yolo)
        .args(["--to", "voc"])
        .arg(&back)
        .arg("--images")
        .arg(&images)
        .assert()
        .success();
    for original in &originals {
        let stem = original.filename.trim_end_matches(".png");
        let again = voc::read(&back.join(format!("{stem}.xml")), &LabelMap::default())
            .unwrap()
            .annotation;
        assert_eq!(&again, original);
        let first = std::fs::read_to_string(images.join(format!("{stem}.xml"))).unwrap();
        let last = std::fs::read_to_string(back.join(format!("{stem}.xml"))).unwrap();
        assert_eq!(
            first.replace("<folder>images</folder>", ""),
            last.replace("<folder>back</folder>", "").replace("back/", "images/")
        );
    }
}

#[test]
fn coco_box_outside_the_image_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let coco = dir.path().join("bad.json");
    std::fs::write(
        &coco,
        r#"{"images":[{"id":1,"file_name":"x.png","width":100,"height":80}],
            "annotations":[{"id":7,"image_id":1,"category_id":1,"bbox":[90,10,20,10]}],
            "categories":[{"id":1,"name":"DF"}]}"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let assert = hipfrac()
        .args(["labels", "convert", "--from", "coco"])
        .arg(&coco)
        .args(["--to", "voc"])
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("bad.json") && stderr.contains("annotation 7") && stderr.contains("outside"),
        "{stderr}"
    );
    assert!(files_below(&out).is_empty());
}

#[test]
fn unknown_label_in_a_label_map_aware_read() {
    let dir = tempfile::tempdir().unwrap();
    let coco = dir.path().join("named.json");
    std::fs::write(
        &coco,
        r#"{"images":[{"id":1,"file_name":"x.png","width":100,"height":80}],
            "annotations":[{"id":1,"image_id":1,"category_id":3,"bbox":[10,10,20,10]}],
            "categories":[{"id":3,"name":"Garden-1"}]}"#,
    )
    .unwrap();
    let out = dir.path().join("out.json");
    let assert = hipfrac()
        .args(["labels", "convert", "--from", "coco"])
        .arg(&coco)
        .args(["--to", "coco"])
        .arg(&out)
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&assert.get_output().stderr).contains("\"Garden-1\""));
    let map = dir.path().join("labels.map");
    std::fs::write(&map, "# site A's names\nGarden-1 = VF\n").unwrap();
    hipfrac()
        .args(["labels", "convert", "--from", "coco"])
        .arg(&coco)
        .args(["--to", "coco"])
        .arg(&out)
        .arg("--label-map")
        .arg(&map)
        .assert()
        .success();
    assert!(std::fs::read_to_string(&out).unwrap().contains("\"category_id\": 2"));
}

/// Issue 13's label-converter faults: each is refused with the file and the fault named,
/// and nothing is written.
#[test]
fn bad_boxes_categories_and_name_collisions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    for name in ["a.png", "b.png"] {
        write_png(&images.join(name), 100, 80, GreyPixels::Eight(&vec![0; 8000])).unwrap();
    }
    let yolo = dir.path().join("yolo");
    std::fs::create_dir_all(&yolo).unwrap();
    std::fs::write(yolo.join("classes.txt"), "DF\nVF\nSF\nUF\nnone\n").unwrap();
    let out = dir.path().join("out");
    let convert_yolo = |line: &str| {
        std::fs::write(yolo.join("a.txt"), format!("{line}\n")).unwrap();
        let assert = hipfrac()
            .args(["labels", "convert", "--from", "yolo"])
            .arg(&yolo)
            .args(["--to", "voc"])
            .arg(&out)
            .arg("--images")
            .arg(&images)
            .assert()
            .failure();
        String::from_utf8_lossy(&assert.get_output().stderr).to_string()
    };
    for line in [
        "0 1.5 0.5 0.1 0.1",
        "0 0.5 0.5 0 0.1",
        "0 0.5 0.5 -0.2 0.1",
        "0 1e300 0.5 0.1 0.1",
        "0 0.95 0.5 0.2 0.1",
    ] {
        let stderr = convert_yolo(line);
        assert!(
            stderr.contains("a.txt") && stderr.contains("not a normalised box"),
            "{line}: {stderr}"
        );
    }
    let stderr = convert_yolo("4 0.5 0.5 0.1 0.1");
    assert!(stderr.contains("no visible fracture"), "{stderr}");
    // x.png and x.dcm would both be x.txt / x.xml.
    std::fs::write(yolo.join("a.txt"), "0 0.5 0.5 0.1 0.1\n").unwrap();
    std::fs::copy(images.join("b.png"), images.join("a.dcm.png")).unwrap();
    std::fs::rename(images.join("b.png"), images.join("a.PNG")).unwrap();
    let assert = hipfrac()
        .args(["labels", "convert", "--from", "yolo"])
        .arg(&yolo)
        .args(["--to", "voc"])
        .arg(&out)
        .arg("--images")
        .arg(&images)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("share the name a"), "{stderr}");
    assert!(files_below(&out).is_empty(), "{:?}", files_below(&out));

    // COCO: a category id given twice would relabel boxes silently.
    let coco = dir.path().join("dup.json");
    std::fs::write(
        &coco,
        r#"{"images":[{"id":1,"file_name":"x.png","width":100,"height":80},{"id":2,"file_name":"x.dcm","width":100,"height":80}],
            "annotations":[{"id":7,"image_id":1,"category_id":1,"bbox":[10,10,20,10]}],
            "categories":[{"id":1,"name":"DF"},{"id":1,"name":"UF"}]}"#,
    )
    .unwrap();
    let assert = hipfrac()
        .args(["labels", "convert", "--from", "coco"])
        .arg(&coco)
        .args(["--to", "yolo"])
        .arg(&out)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("category id 1 appears twice"), "{stderr}");
    std::fs::write(
        &coco,
        std::fs::read_to_string(&coco)
            .unwrap()
            .replace(r#",{"id":1,"name":"UF"}"#, ""),
    )
    .unwrap();
    let assert = hipfrac()
        .args(["labels", "convert", "--from", "coco"])
        .arg(&coco)
        .args(["--to", "yolo"])
        .arg(&out)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("x.dcm and x.png would be written to the same file")
            || stderr.contains("x.png and x.dcm would be written"),
        "{stderr}"
    );
    assert!(files_below(&out).is_empty(), "{:?}", files_below(&out));
}

/// A data set that labels only "fractured" (as FracAtlas does, YOLO class names in its own
/// words): a label map names it `fracture`, and the fracture of unknown type survives YOLO →
/// VOC → COCO → YOLO → VOC, is counted by `dataset check`, and trains (stage whole, JPEG films)
/// without error.
#[test]
fn a_fracture_of_unknown_type_round_trips_and_trains() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/jpeg");
    let images = dir.path().join("images");
    let yolo = dir.path().join("yolo");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&yolo).unwrap();
    for (k, name) in [
        "baseline.jpg",
        "progressive.jpg",
        "colour-progressive.jpg",
        "exif-orientation-6.jpg",
    ]
    .iter()
    .enumerate()
    {
        std::fs::copy(fixtures.join(name), images.join(format!("film{k}.jpg"))).unwrap();
        // Films 0 and 1 fractured (one box each), 2 and 3 not.
        let text = if k < 2 {
            format!("0 0.{} 0.5 0.25 0.5\n", 3 + k)
        } else {
            String::new()
        };
        std::fs::write(yolo.join(format!("film{k}.txt")), text).unwrap();
    }
    std::fs::write(yolo.join("classes.txt"), "fractured\n").unwrap();
    let map = dir.path().join("labels.map");
    std::fs::write(&map, "fractured = fracture   # FracAtlas gives no type\n").unwrap();
    let voc_dir = dir.path().join("voc");
    let convert = |from: &str, input: &std::path::Path, to: &str, output: &std::path::Path, extra: &[&str]| {
        hipfrac()
            .args(["labels", "convert", "--from", from])
            .arg(input)
            .args(["--to", to])
            .arg(output)
            .args(extra)
            .assert()
            .success();
    };
    let images_arg = images.to_str().unwrap();
    convert(
        "yolo",
        &yolo,
        "voc",
        &voc_dir,
        &["--images", images_arg, "--label-map", map.to_str().unwrap()],
    );
    let first = voc::read(&voc_dir.join("film0.xml"), &LabelMap::default())
        .unwrap()
        .annotation;
    assert_eq!(first.objects.len(), 1);
    assert_eq!(first.objects[0].label, Label::UntypedFracture);
    assert_eq!(
        (first.width, first.height),
        (96, 64),
        "the film as shown (EXIF applied)"
    );
    assert!(std::fs::read_to_string(voc_dir.join("film0.xml"))
        .unwrap()
        .contains("<name>fracture</name>"));
    let coco = dir.path().join("labels.json");
    let yolo_again = dir.path().join("yolo-again");
    let voc_again = dir.path().join("voc-again");
    convert("voc", &voc_dir, "coco", &coco, &[]);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&coco).unwrap()).unwrap();
    assert!(
        json["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == 5 && c["name"] == "fracture"),
        "{json}"
    );
    convert("coco", &coco, "yolo", &yolo_again, &[]);
    assert_eq!(
        std::fs::read_to_string(yolo_again.join("classes.txt")).unwrap(),
        "DF\nVF\nSF\nUF\nfracture\n"
    );
    assert!(std::fs::read_to_string(yolo_again.join("film1.txt"))
        .unwrap()
        .starts_with("4 "));
    convert("yolo", &yolo_again, "voc", &voc_again, &["--images", images_arg]);
    for k in 0..4 {
        let a = voc::read(&voc_dir.join(format!("film{k}.xml")), &LabelMap::default())
            .unwrap()
            .annotation;
        let b = voc::read(&voc_again.join(format!("film{k}.xml")), &LabelMap::default())
            .unwrap()
            .annotation;
        assert_eq!(a, b, "film{k}");
    }
    // `dataset check` counts them in their own row.
    for k in 0..4 {
        std::fs::copy(
            images.join(format!("film{k}.jpg")),
            voc_dir.join(format!("film{k}.jpg")),
        )
        .unwrap();
    }
    let check = hipfrac().args(["dataset", "check"]).arg(&voc_dir).assert().success();
    let table = String::from_utf8_lossy(&check.get_output().stdout).to_string();
    assert!(
        table
            .lines()
            .any(|l| l.contains("fracture of unknown type (fracture)") && l.split_whitespace().any(|t| t == "2")),
        "{table}"
    );
    // Training on them: the boxes are partial labels.
    let manifest = voc_dir.join("train.csv");
    let mut rows = String::from("image,annotation,patient,site,label\n");
    for k in 0..4 {
        rows.push_str(&format!(
            "film{k}.jpg,film{k}.xml,P{k},fracatlas,{}\n",
            if k < 2 { "fracture" } else { "none" }
        ));
    }
    std::fs::write(&manifest, rows).unwrap();
    let config = dir.path().join("train.toml");
    std::fs::write(
        &config,
        format!(
            "train = \"{m}\"\nval = \"{m}\"\nout = \"{o}\"\nimage_size = 64\nbatch_size = 2\nepochs = 2\nwarmup_epochs = 1.0\nno_aug_epochs = 1\nval_interval = 1\nbase_lr_per_image = 0.001\nmosaic = 0.0\nmixup = 0.0\n\n[model]\npreset = \"nano\"\n",
            m = manifest.display(),
            o = dir.path().join("run").display()
        ),
    )
    .unwrap();
    hipfrac()
        .args(["train", "--config"])
        .arg(&config)
        .args(["--device", "cpu"])
        .assert()
        .success();
    let log = std::fs::read_to_string(dir.path().join("run/log.csv")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(!log.contains("NaN") && !log.contains("inf"), "{log}");
}
