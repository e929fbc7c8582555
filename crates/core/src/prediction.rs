//! What the detector concluded about one radiograph, and that conclusion beside the truth.
//! These are plain values: the predictor (libtorch) makes them, and the reports, the reading
//! workstation and the DICOM/HTTP outputs read them without linking the model.

use crate::assess::NotAssessable;
use crate::verdict::Verdict;
use crate::{BBox, Detection, FractureClass, Label, Laterality, Radiograph};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Shown with every output: what the answers are and are not.
pub const NOTICE: &str =
    "Research software, not a medical device: the AI's boxes and verdict support a reader and never replace one.";

/// Which hip a finding concerns, and how that was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideCall {
    pub side: Side,
    pub source: SideSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Right,
    Left,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Right => "right",
            Side::Left => "left",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideSource {
    /// The file's Image Laterality (0020,0062) or Laterality (0020,0060): R or L.
    ImageLaterality,
    /// From the box's position: on an AP radiograph the patient's right is on the viewer's
    /// left, so a box centred left of the midline is the right hip. Used for bilateral views
    /// (laterality B) and files that do not say.
    BoxPosition,
}

impl SideSource {
    pub fn name(self) -> &'static str {
        match self {
            SideSource::ImageLaterality => "image_laterality",
            SideSource::BoxPosition => "box_position",
        }
    }
}

/// Which hip `bbox` is on in `image`.
pub fn side(image: &Radiograph, bbox: &BBox) -> SideCall {
    match image.meta.laterality {
        Some(Laterality::Right) => SideCall {
            side: Side::Right,
            source: SideSource::ImageLaterality,
        },
        Some(Laterality::Left) => SideCall {
            side: Side::Left,
            source: SideSource::ImageLaterality,
        },
        _ => side_by_position(image.width(), bbox),
    }
}

/// Which hip `bbox` is on by its position alone, in an AP image `width` pixels wide: the
/// patient's right is on the viewer's left.
pub fn side_by_position(width: u32, bbox: &BBox) -> SideCall {
    let (cx, _) = bbox.center();
    let side = if cx < width as f32 / 2.0 {
        Side::Right
    } else {
        Side::Left
    };
    SideCall {
        side,
        source: SideSource::BoxPosition,
    }
}

/// Everything predicted for one image. Boxes are in the image's own pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub width: u32,
    pub height: u32,
    /// Boxes at or above the detector's score floor after NMS, most confident first (none
    /// when the header ruled the image out: the network did not run).
    pub detections: Vec<Detection>,
    /// Each class's most confident box score (DF, VF, SF, UF); 0 without a box.
    pub class_scores: [f32; 4],
    pub answer: Answer,
    /// The hip of the verdict's most confident box (none for "no visible fracture" and for
    /// images not assessed).
    pub side: Option<SideCall>,
    /// The two-stage detector's answer per hip it found (empty for the single-stage detector
    /// and for images not assessed). The image's answer follows from the same boxes: each
    /// class's score is its best over the hips, so a fractured hip's answer wins over "none".
    #[serde(default)]
    pub hips: Vec<HipCall>,
}

/// One hip (proximal femur) the two-stage detector found and read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HipCall {
    /// The localiser's box, in the image's pixels.
    pub bbox: BBox,
    /// The localiser's confidence that this is a proximal femur.
    pub score: f32,
    pub side: SideCall,
    /// The hip's own verdict, from the boxes found in its crop.
    pub verdict: Verdict,
    /// Each class's most confident box score within this hip (DF, VF, SF, UF).
    pub class_scores: [f32; 4],
}

/// A verdict, or why the image gets none ([`crate::assess`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Answer {
    Verdict(Verdict),
    NotAssessable(NotAssessable),
}

/// The code written for an image that gets no verdict, beside the labels' codes.
pub const NOT_ASSESSABLE: &str = "not_assessable";

impl Prediction {
    /// The prediction of a `width × height` image the check refused: no boxes, no scores.
    pub fn refused(width: u32, height: u32, why: NotAssessable) -> Prediction {
        Prediction {
            width,
            height,
            detections: Vec::new(),
            class_scores: [0.0; 4],
            answer: Answer::NotAssessable(why),
            side: None,
            hips: Vec::new(),
        }
    }

    /// The verdict, when the image was assessed.
    pub fn verdict(&self) -> Option<&Verdict> {
        match &self.answer {
            Answer::Verdict(v) => Some(v),
            Answer::NotAssessable(_) => None,
        }
    }

    /// Why the image got no verdict, when it got none.
    pub fn not_assessable(&self) -> Option<&NotAssessable> {
        match &self.answer {
            Answer::Verdict(_) => None,
            Answer::NotAssessable(n) => Some(n),
        }
    }

    /// The answer's code: a label's (`DF` … `none`) or [`NOT_ASSESSABLE`].
    pub fn code(&self) -> &'static str {
        self.verdict().map_or(NOT_ASSESSABLE, |v| v.label.code())
    }

    /// The answer in the paper's five-label tables. An image not assessed raises no alarm, so
    /// it counts as "no visible fracture": a miss when it holds a fracture (evaluation reports
    /// how many there were).
    pub fn label_for_tables(&self) -> Label {
        self.verdict().map_or(Label::NoFracture, |v| v.label)
    }

    /// [`Self::label_for_tables`] at the high-specificity point alone.
    pub fn label_at_fracture_point(&self) -> Label {
        self.verdict().map_or(Label::NoFracture, |v| v.at_fracture_point())
    }

    /// The boxes a reader is shown ([`crate::verdict::reportable`]: at most
    /// [`crate::verdict::SHOWN_BOXES`], one per finding), and always the answered class's most
    /// confident box: under VF priority the answer can be a class whose box is below its own
    /// suspicious threshold, and a banner must never name a class no box shows.
    pub fn shown_boxes(&self, points: &crate::OperatingPoints) -> Vec<Detection> {
        let mut shown = crate::verdict::reportable(&self.detections, points, crate::verdict::SHOWN_BOXES);
        let answered = self.verdict().and_then(|v| v.label.fracture());
        if let Some(class) = answered {
            if !shown.iter().any(|d| d.class == class) {
                if let Some(best) = self
                    .detections
                    .iter()
                    .filter(|d| d.class == class)
                    .max_by(|a, b| a.score.total_cmp(&b.score))
                {
                    if shown.len() == crate::verdict::SHOWN_BOXES {
                        shown.pop();
                    }
                    shown.push(*best);
                    shown.sort_by(|a, b| b.score.total_cmp(&a.score));
                }
            }
        }
        shown
    }

    /// The highest of the four class scores (how close a "none" came to a fracture).
    pub fn max_fracture_score(&self) -> f32 {
        self.class_scores.iter().copied().fold(0.0, f32::max)
    }
}

/// One manifest image: its truth and the model's prediction.
#[derive(Debug, Clone)]
pub struct Case {
    /// The manifest's image path (relative to the manifest).
    pub image: String,
    pub path: PathBuf,
    pub patient: String,
    pub site: String,
    pub truth: Label,
    /// True boxes in the image's pixels.
    pub truth_boxes: Vec<(FractureClass, BBox)>,
    /// True boxes of fractures whose type the annotation does not give.
    pub untyped_boxes: Vec<BBox>,
    pub prediction: Prediction,
    /// The image carries the phantom's mark (DICOM Image Comments or PNG Comment).
    pub simulated: bool,
}

impl Case {
    /// The best IoU between a true box of the true class and a predicted box of that class
    /// (none for "no visible fracture" or without such a box).
    pub fn best_iou(&self) -> Option<f32> {
        let Label::Fracture(class) = self.truth else {
            return None;
        };
        self.truth_boxes
            .iter()
            .filter(|(k, _)| *k == class)
            .flat_map(|(_, t)| {
                self.prediction
                    .detections
                    .iter()
                    .filter(|d| d.class == class)
                    .map(move |d| crate::iou(t, &d.bbox))
            })
            .fold(None, |best: Option<f32>, v| Some(best.map_or(v, |b| b.max(v))))
    }
}

/// Escapes text for HTML and SVG (element content and double- or single-quoted attributes).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::verdict::{decide, OperatingPoints};
    use crate::{BBox, Detection, FractureClass};

    /// VF priority answers VF with a VF box below VF's own threshold: that box is shown.
    #[test]
    fn the_answered_class_always_has_its_box_shown() {
        let mut points = OperatingPoints::uncalibrated();
        points.vf_priority = 0.1;
        let df = Detection {
            class: FractureClass::DisplacedNeck,
            score: 0.9,
            bbox: BBox::new(0.0, 0.0, 10.0, 10.0),
        };
        let vf = Detection {
            class: FractureClass::ValgusImpactedNeck,
            score: 0.15,
            bbox: BBox::new(1.0, 1.0, 11.0, 11.0),
        };
        let scores = [0.9, 0.15, 0.0, 0.0];
        let verdict = decide(scores, &points);
        assert_eq!(verdict.label, crate::Label::Fracture(FractureClass::ValgusImpactedNeck));
        let p = super::Prediction {
            width: 20,
            height: 20,
            detections: vec![df, vf],
            class_scores: scores,
            answer: super::Answer::Verdict(verdict),
            side: None,
            hips: Vec::new(),
        };
        assert_eq!(
            crate::verdict::reportable(&p.detections, &points, 5),
            vec![df],
            "below VF's threshold"
        );
        assert_eq!(p.shown_boxes(&points), vec![df, vf]);
    }

    #[test]
    fn escape_covers_both_quotes() {
        assert_eq!(
            super::escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
