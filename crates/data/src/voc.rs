//! LabelImg Pascal VOC XML (the paper's annotation tool).
//!
//! Reading is strict and safe: DOCTYPE declarations (and so entity definitions, the XML
//! "billion laughs" bomb) are refused, files over 1 MiB are refused, `filename` must be a
//! plain name, unknown labels are errors naming the file and the label. VOC coordinates are
//! 1-based inclusive pixel indices; they are converted to `BBox`'s half-open convention.
//! Objects named `hip` (any case) are proximal femur boxes for the two-stage detector's
//! localiser ([`Annotation::hips`]), not labels; they are written back after the labels.

use crate::{check_plain_filename, format_number, Annotation, Error, LabelMap, Object, Result};
use hipfrac_core::{BBox, Label};
use quick_xml::events::Event;
use quick_xml::Reader;
use std::path::Path;

/// The largest annotation file read. A LabelImg file is a few kilobytes.
pub const MAX_XML_BYTES: u64 = 1 << 20;

/// A VOC file: the annotation plus the fields LabelImg writes that carry no label.
#[derive(Debug, Clone, PartialEq)]
pub struct VocFile {
    /// The boxes and image size.
    pub annotation: Annotation,
    /// `folder`.
    pub folder: String,
    /// `path` (LabelImg writes the absolute path on the labeller's machine; informative only).
    pub path: String,
    /// `source/database`.
    pub database: String,
    /// `segmented`.
    pub segmented: bool,
    /// `object/pose` of each object (LabelImg writes `Unspecified`).
    pub poses: Vec<String>,
}

impl VocFile {
    /// A VOC file around an annotation with LabelImg's defaults for the other fields.
    pub fn new(annotation: Annotation, folder: &str) -> Self {
        let poses = vec!["Unspecified".to_string(); annotation.objects.len()];
        let path = format!("{folder}/{}", annotation.filename);
        Self {
            annotation,
            folder: folder.to_string(),
            path,
            database: "Unknown".into(),
            segmented: false,
            poses,
        }
    }
}

#[derive(Default)]
struct RawObject {
    name: Option<String>,
    pose: Option<String>,
    truncated: Option<String>,
    difficult: Option<String>,
    xmin: Option<String>,
    ymin: Option<String>,
    xmax: Option<String>,
    ymax: Option<String>,
}

/// Reads a VOC file.
pub fn read(path: &Path, labels: &LabelMap) -> Result<VocFile> {
    // Not followed: a symlink may point anywhere, a FIFO or device would block the read.
    let metadata = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if !metadata.file_type().is_file() {
        return Err(Error::invalid(
            path,
            "not a regular file (a link, FIFO or device): annotations must be plain files",
        ));
    }
    let size = metadata.len();
    if size > MAX_XML_BYTES {
        return Err(Error::invalid(
            path,
            format!("{size} bytes is too large for an annotation file"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path, labels)
}

/// Parses VOC text; `path` names the source in errors.
pub fn parse(text: &str, path: &Path, labels: &LabelMap) -> Result<VocFile> {
    let invalid = |message: String| Error::invalid(path, message);
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    reader.config_mut().expand_empty_elements = true;

    let mut stack: Vec<String> = Vec::new();
    let mut fields: std::collections::HashMap<String, String> = Default::default();
    let mut objects: Vec<RawObject> = Vec::new();
    let mut roots = 0;
    loop {
        let event = reader.read_event().map_err(|source| Error::Xml {
            path: path.to_path_buf(),
            position: reader.buffer_position(),
            source,
        })?;
        match event {
            Event::DocType(_) => {
                return Err(invalid(
                    "DOCTYPE declarations are not allowed in annotations (entity expansion refused)".into(),
                ))
            }
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if stack.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err(invalid(format!(
                            "a second root element <{name}>: one <annotation> per file"
                        )));
                    }
                }
                if stack.len() == 1 && stack[0] == "annotation" && name == "object" {
                    objects.push(RawObject::default());
                }
                stack.push(name);
                if stack.len() > 16 {
                    return Err(invalid("XML nested too deeply".into()));
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(_) | Event::CData(_) if stack.is_empty() => {
                return Err(invalid("text outside the <annotation> element".into()));
            }
            Event::Text(_) | Event::CData(_) => {
                let value = match &event {
                    Event::Text(content) => content
                        .unescape()
                        .map_err(|source| Error::XmlText {
                            path: path.to_path_buf(),
                            element: stack.join("/"),
                            source,
                        })?
                        .trim()
                        .to_string(),
                    Event::CData(content) => String::from_utf8_lossy(content).trim().to_string(),
                    _ => unreachable!("matched above"),
                };
                let key = stack.join("/");
                if let Some(object) = objects.last_mut().filter(|_| key.starts_with("annotation/object/")) {
                    let slot = match key.as_str() {
                        "annotation/object/name" => &mut object.name,
                        "annotation/object/pose" => &mut object.pose,
                        "annotation/object/truncated" => &mut object.truncated,
                        "annotation/object/difficult" => &mut object.difficult,
                        "annotation/object/bndbox/xmin" => &mut object.xmin,
                        "annotation/object/bndbox/ymin" => &mut object.ymin,
                        "annotation/object/bndbox/xmax" => &mut object.xmax,
                        "annotation/object/bndbox/ymax" => &mut object.ymax,
                        _ => continue,
                    };
                    // Text split by a comment or CDATA (`3<!-- -->00`) is one value.
                    slot.get_or_insert_with(String::new).push_str(&value);
                } else {
                    fields.entry(key).or_default().push_str(&value);
                }
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(invalid(format!("the file ends inside <{open}>: not closed")));
                }
                break;
            }
            _ => {}
        }
    }
    if !text.contains("<annotation") {
        return Err(invalid("not a Pascal VOC annotation (no <annotation> element)".into()));
    }
    let field = |key: &str| fields.get(key).cloned().unwrap_or_default();
    let number = |key: &str| -> Result<u32> {
        let raw = field(key);
        raw.parse::<u32>()
            .map_err(|_| invalid(format!("<{key}> {raw:?} is not a whole number")))
    };
    let filename = field("annotation/filename");
    check_plain_filename(path, &filename)?;
    let width = number("annotation/size/width")?;
    let height = number("annotation/size/height")?;
    let depth = if fields.contains_key("annotation/size/depth") {
        number("annotation/size/depth")?
    } else {
        1
    };
    let flag = |v: &Option<String>| matches!(v.as_deref(), Some("1") | Some("true"));

    let mut parsed = Vec::with_capacity(objects.len());
    let mut poses = Vec::with_capacity(objects.len());
    let mut hips = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        let name = object
            .name
            .clone()
            .ok_or_else(|| invalid(format!("object {} has no <name>", index + 1)))?;
        let is_hip = name.trim().eq_ignore_ascii_case(crate::HIP);
        let label = if is_hip {
            Label::NoFracture
        } else {
            labels.resolve(&name, path)?
        };
        let coordinate = |v: &Option<String>, what: &str| -> Result<f64> {
            let raw = v
                .as_deref()
                .ok_or_else(|| invalid(format!("object {} ({name}) has no <{what}>", index + 1)))?;
            raw.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
                invalid(format!(
                    "object {} ({name}): <{what}> {raw:?} is not a number",
                    index + 1
                ))
            })
        };
        let bbox = BBox::from_voc(
            coordinate(&object.xmin, "xmin")?,
            coordinate(&object.ymin, "ymin")?,
            coordinate(&object.xmax, "xmax")?,
            coordinate(&object.ymax, "ymax")?,
        );
        if is_hip {
            hips.push(bbox);
            continue;
        }
        parsed.push(Object {
            label,
            bbox,
            truncated: flag(&object.truncated),
            difficult: flag(&object.difficult),
        });
        poses.push(object.pose.clone().unwrap_or_else(|| "Unspecified".into()));
    }
    Ok(VocFile {
        annotation: Annotation {
            filename,
            width,
            height,
            depth,
            objects: parsed,
            hips,
        },
        folder: field("annotation/folder"),
        path: field("annotation/path"),
        database: fields
            .get("annotation/source/database")
            .cloned()
            .unwrap_or_else(|| "Unknown".into()),
        segmented: field("annotation/segmented") == "1",
        poses,
    })
}

/// LabelImg's layout, tab-indented, no XML declaration; labels written as their codes.
pub fn to_string(voc: &VocFile) -> String {
    use quick_xml::escape::escape;
    let a = &voc.annotation;
    let mut out = String::new();
    out.push_str("<annotation>\n");
    out.push_str(&format!("\t<folder>{}</folder>\n", escape(voc.folder.as_str())));
    out.push_str(&format!("\t<filename>{}</filename>\n", escape(a.filename.as_str())));
    out.push_str(&format!("\t<path>{}</path>\n", escape(voc.path.as_str())));
    out.push_str(&format!(
        "\t<source>\n\t\t<database>{}</database>\n\t</source>\n",
        escape(voc.database.as_str())
    ));
    out.push_str(&format!(
        "\t<size>\n\t\t<width>{}</width>\n\t\t<height>{}</height>\n\t\t<depth>{}</depth>\n\t</size>\n",
        a.width, a.height, a.depth
    ));
    out.push_str(&format!("\t<segmented>{}</segmented>\n", u8::from(voc.segmented)));
    for (index, object) in a.objects.iter().enumerate() {
        let (xmin, ymin, xmax, ymax) = object.bbox.to_voc();
        let pose = voc.poses.get(index).map(String::as_str).unwrap_or("Unspecified");
        out.push_str("\t<object>\n");
        out.push_str(&format!("\t\t<name>{}</name>\n", object.label.code()));
        out.push_str(&format!("\t\t<pose>{}</pose>\n", escape(pose)));
        out.push_str(&format!("\t\t<truncated>{}</truncated>\n", u8::from(object.truncated)));
        out.push_str(&format!("\t\t<difficult>{}</difficult>\n", u8::from(object.difficult)));
        out.push_str("\t\t<bndbox>\n");
        for (tag, value) in [("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)] {
            out.push_str(&format!("\t\t\t<{tag}>{}</{tag}>\n", format_number(value)));
        }
        out.push_str("\t\t</bndbox>\n\t</object>\n");
    }
    for hip in &a.hips {
        let (xmin, ymin, xmax, ymax) = hip.to_voc();
        out.push_str(&format!("\t<object>\n\t\t<name>{}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n", crate::HIP));
        for (tag, value) in [("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)] {
            out.push_str(&format!("\t\t\t<{tag}>{}</{tag}>\n", format_number(value)));
        }
        out.push_str("\t\t</bndbox>\n\t</object>\n");
    }
    out.push_str("</annotation>\n");
    out
}

/// Writes a VOC file atomically.
pub fn write(path: &Path, voc: &VocFile) -> Result<()> {
    hipfrac_dicom::atomic::write_atomic(path, to_string(voc).as_bytes()).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hipfrac_core::{FractureClass, Label};

    const LABELIMG: &str = "<annotation>\n\t<folder>images</folder>\n\t<filename>hip_001.png</filename>\n\t<path>/home/labeller/images/hip_001.png</path>\n\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n\t<size>\n\t\t<width>1024</width>\n\t\t<height>1024</height>\n\t\t<depth>1</depth>\n\t</size>\n\t<segmented>0</segmented>\n\t<object>\n\t\t<name>valgus-impacted femoral neck fracture</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>1</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>401</xmin>\n\t\t\t<ymin>322</ymin>\n\t\t\t<xmax>520</xmax>\n\t\t\t<ymax>418</ymax>\n\t\t</bndbox>\n\t</object>\n</annotation>\n";

    #[test]
    fn reads_labelimg_and_writes_it_back_in_its_layout() {
        let voc = parse(LABELIMG, Path::new("hip_001.xml"), &LabelMap::default()).unwrap();
        let a = &voc.annotation;
        assert_eq!((a.width, a.height, a.depth), (1024, 1024, 1));
        assert_eq!(a.objects.len(), 1);
        assert_eq!(a.objects[0].label, Label::Fracture(FractureClass::ValgusImpactedNeck));
        assert_eq!(a.objects[0].bbox, BBox::new(400.0, 321.0, 520.0, 418.0));
        assert!(a.objects[0].difficult);
        assert_eq!(voc.path, "/home/labeller/images/hip_001.png");
        // Written back, only the label spelling changes (to its code).
        let written = to_string(&voc);
        assert_eq!(written, LABELIMG.replace("valgus-impacted femoral neck fracture", "VF"));
        assert_eq!(
            parse(&written, Path::new("x.xml"), &LabelMap::default()).unwrap(),
            VocFile {
                annotation: voc.annotation.clone(),
                ..voc.clone()
            }
        );
    }

    #[test]
    fn hip_boxes_are_read_apart_from_the_labels_and_written_back() {
        let with_hip = LABELIMG.replace(
            "</annotation>",
            "\t<object>\n\t\t<name>Hip</name>\n\t\t<bndbox>\n\t\t\t<xmin>301</xmin>\n\t\t\t<ymin>201</ymin>\n\t\t\t<xmax>700</xmax>\n\t\t\t<ymax>650</ymax>\n\t\t</bndbox>\n\t</object>\n</annotation>",
        );
        let voc = parse(&with_hip, Path::new("h.xml"), &LabelMap::default()).unwrap();
        assert_eq!(voc.annotation.objects.len(), 1);
        assert_eq!(
            voc.annotation.image_label(),
            Label::Fracture(FractureClass::ValgusImpactedNeck)
        );
        assert_eq!(voc.annotation.hips, vec![BBox::new(300.0, 200.0, 700.0, 650.0)]);
        let again = parse(&to_string(&voc), Path::new("h.xml"), &LabelMap::default()).unwrap();
        assert_eq!(again.annotation, voc.annotation);
    }

    #[test]
    fn refuses_entity_bombs_traversal_and_unknown_labels() {
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><annotation><filename>&lol2;</filename></annotation>";
        let err = parse(bomb, Path::new("bomb.xml"), &LabelMap::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bomb.xml") && err.contains("DOCTYPE"), "{err}");

        let undefined_entity = LABELIMG.replace("hip_001.png</filename>", "&lol;</filename>");
        assert!(parse(&undefined_entity, Path::new("e.xml"), &LabelMap::default()).is_err());

        let traversal = LABELIMG.replace("<filename>hip_001.png", "<filename>../../etc/passwd");
        let err = parse(&traversal, Path::new("t.xml"), &LabelMap::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.xml") && err.contains("../../etc/passwd"), "{err}");

        let unknown = LABELIMG.replace("valgus-impacted femoral neck fracture", "femoral shaft");
        let err = hipfrac_core::error_chain(&parse(&unknown, Path::new("u.xml"), &LabelMap::default()).unwrap_err());
        assert!(err.starts_with("u.xml: unknown label \"femoral shaft\""), "{err}");
    }
}
