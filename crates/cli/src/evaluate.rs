//! `hipfrac evaluate` and `hipfrac calibrate`: predictions on labelled manifests, measured the
//! way the paper measures them (and more), written as a self-contained HTML report with
//! markdown and CSV beside it.

use crate::cli::{CalibrateArgs, EvaluateArgs};
use crate::predict::{device, load_model, NOTICE};
use crate::svg::{base64, escape, unit_plot, Series};
use crate::{progress, Outcome};
use anyhow::{bail, Context, Result};
use hipfrac_core::{FractureClass, Label};
use hipfrac_eval::calibration::{reliability, Bin};
use hipfrac_eval::classification::{summarize, ImageOutcome, Summary};
use hipfrac_eval::intervals::{bootstrap_by_cluster, Estimate};
use hipfrac_eval::map::{coco_map, pr_curve, ImageBoxes};
use hipfrac_eval::roc::{auc, roc_curve, RocPoint};
use hipfrac_infer::cases::{predict_manifest, Case};
use hipfrac_infer::overlay::{self, Marks};
use hipfrac_infer::verdict::{self, OperatingPoints};
use hipfrac_infer::Predictor;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Colours of the four classes in plots (as the overlays).
fn css_colour(class: FractureClass) -> String {
    let [r, g, b] = overlay::colour(class);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Everything measured on one manifest.
pub struct Section {
    pub name: String,
    pub manifest: PathBuf,
    pub cases: Vec<Case>,
    /// All images simulated by the phantom.
    pub simulated: bool,
    /// At the verdict (a class is answered from its suspicious threshold up).
    pub verdict: Summary,
    /// At the high-specificity point (suspicious answers count as "no visible fracture").
    pub fracture_point: Summary,
    pub map: Option<(f64, f64)>,
    pub pr: Vec<Option<(Vec<f64>, Vec<f64>)>>,
    pub ap50: Vec<Option<f64>>,
    pub roc: Vec<Option<Vec<RocPoint>>>,
    pub auc: Vec<Option<f64>>,
    pub reliability: Vec<Bin>,
    pub ece: f64,
    /// Patient-level bootstrap intervals of micro and macro sensitivity, and of each class's
    /// mean IoU.
    pub micro_se: Estimate,
    pub macro_se: Estimate,
    pub iou: Vec<Estimate>,
}

fn outcomes(cases: &[Case], fracture_point: bool) -> Vec<ImageOutcome> {
    cases
        .iter()
        .map(|c| ImageOutcome {
            image: c.image.clone(),
            patient: c.patient.clone(),
            truth: c.truth,
            answer: if fracture_point { c.prediction.verdict.at_fracture_point() } else { c.prediction.verdict.label },
            truth_boxes: c.truth_boxes.clone(),
            predicted_boxes: c.prediction.detections.clone(),
        })
        .collect()
}

const BOOTSTRAP_REPLICATES: usize = 1000;

/// Measures `cases` (see [`Section`]).
pub fn measure(name: &str, manifest: &Path, cases: Vec<Case>, simulated: bool) -> Section {
    let items = outcomes(&cases, false);
    let verdict = summarize(&items);
    let fracture_point = summarize(&outcomes(&cases, true));
    let boxes: Vec<ImageBoxes> = cases
        .iter()
        .map(|c| ImageBoxes { truth: c.truth_boxes.clone(), detections: c.prediction.detections.iter().map(|d| (d.class, d.score, d.bbox)).collect() })
        .collect();
    let map = coco_map(&boxes);
    let pr: Vec<_> = FractureClass::ALL.iter().map(|&c| pr_curve(&boxes, c, 0.5)).collect();
    let ap50 = FractureClass::ALL.iter().map(|&c| hipfrac_eval::map::average_precision(&boxes, c, 0.5)).collect();
    let scores = |class: FractureClass| -> Vec<(f64, bool)> { cases.iter().map(|c| (c.prediction.class_scores[class.index()] as f64, c.truth == Label::Fracture(class))).collect() };
    let roc = FractureClass::ALL.iter().map(|&c| roc_curve(&scores(c))).collect();
    let auc = FractureClass::ALL.iter().map(|&c| auc(&scores(c))).collect();
    let pooled: Vec<(f64, bool)> = FractureClass::ALL.iter().flat_map(|&c| scores(c)).collect();
    let (reliability, ece) = reliability(&pooled, 10);
    let patient = |o: &ImageOutcome| o.patient.clone();
    let micro_se = bootstrap_by_cluster(&items, patient, |s| summarize(s).micro.sensitivity, BOOTSTRAP_REPLICATES, 1);
    let macro_se = bootstrap_by_cluster(&items, patient, |s| summarize(s).macro_average.sensitivity, BOOTSTRAP_REPLICATES, 2);
    let iou = FractureClass::ALL
        .iter()
        .map(|&class| {
            bootstrap_by_cluster(
                &items,
                patient,
                |s| {
                    let v = hipfrac_eval::classification::matched_ious(s, class);
                    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
                },
                BOOTSTRAP_REPLICATES,
                3 + class.index() as u64,
            )
        })
        .collect();
    Section { name: name.into(), manifest: manifest.to_path_buf(), cases, simulated, verdict, fracture_point, map, pr, ap50, roc, auc, reliability, ece, micro_se, macro_se, iou }
}

/// Whether the images of `cases` carry the phantom's mark.
fn all_simulated(cases: &[Case]) -> bool {
    !cases.is_empty() && cases.iter().all(|c| c.simulated)
}

/// Predicts every image of a manifest with a progress bar.
fn predict_with_bar(predictor: &Predictor, manifest: &Path, what: &str) -> Result<Vec<Case>> {
    let bar = progress::bar(0, what);
    let cases = predict_manifest(predictor, manifest, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    Ok(cases)
}

/// Runs the model on each `(name, manifest)`, with a progress bar.
pub fn run_sections(predictor: &Predictor, data: &[(String, PathBuf)]) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    for (name, path) in data {
        let cases = predict_with_bar(predictor, path, &format!("evaluating {name}"))?;
        if cases.is_empty() {
            bail!("{}: the manifest lists no images", path.display());
        }
        let simulated = all_simulated(&cases);
        sections.push(measure(name, path, cases, simulated));
    }
    Ok(sections)
}

/// `NAME=PATH` or `PATH` (named by the file's stem).
fn parse_data(spec: &str) -> (String, PathBuf) {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => (name.to_string(), PathBuf::from(path)),
        _ => {
            let path = PathBuf::from(spec);
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| spec.to_string());
            (name, path)
        }
    }
}

pub fn run(args: EvaluateArgs) -> Result<Outcome> {
    let report = args.out.join("report.html");
    if report.exists() && !args.overwrite {
        bail!("{} exists (an earlier report); pass --overwrite to replace it", report.display());
    }
    let data: Vec<(String, PathBuf)> = args.data.iter().map(|s| parse_data(s)).collect();
    for (_, path) in &data {
        if !path.is_file() {
            bail!("{}: no such manifest", path.display());
        }
    }
    let device = device(args.device.as_deref())?;
    let predictor = load_model(&args.model, device)?;
    let sections = run_sections(&predictor, &data)?;
    write_report(&args.out, &predictor, &sections, &ReportContext::default())?;
    for s in &sections {
        eprintln!("{}", one_screen(s));
    }
    eprintln!("report: {}", report.display());
    Ok(Outcome::Success)
}

/// Extra lines for the report (the demo's timings and settings).
#[derive(Default)]
pub struct ReportContext {
    pub title: Option<String>,
    pub notes: Vec<String>,
}

/// A short text summary of a section.
pub fn one_screen(s: &Section) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{} ({} images{}):", s.name, s.cases.len(), if s.simulated { ", PHANTOM" } else { "" });
    let _ = writeln!(t, "  class   Se     Sp     IoU    Dice");
    for (m, class) in s.verdict.per_class.iter().zip(FractureClass::ALL) {
        let _ = writeln!(t, "  {:<6} {:>5}  {:>5}  {:>5}  {:>5}", class.code(), f2(m.sensitivity.value), f2(m.specificity.value), opt(m.mean_iou), opt(m.mean_dice));
    }
    let _ = writeln!(t, "  micro  {:>5}  {:>5}", f2(s.verdict.micro.sensitivity), f2(s.verdict.micro.specificity));
    let _ = write!(t, "  macro  {:>5}  {:>5}   mAP50 {}", f2(s.verdict.macro_average.sensitivity), f2(s.verdict.macro_average.specificity), opt(s.map.map(|m| m.0)));
    t
}

/// Two decimals, or a dash for undefined values.
pub(crate) fn f2(v: f64) -> String {
    if v.is_finite() { format!("{v:.2}") } else { "–".into() }
}

fn opt(v: Option<f64>) -> String {
    v.map(f2).unwrap_or_else(|| "–".into())
}

fn ci(e: &hipfrac_eval::intervals::Estimate) -> String {
    if e.value.is_finite() && e.lower.is_finite() { format!("{:.2} ({:.2}–{:.2})", e.value, e.lower, e.upper) } else { "–".into() }
}


const DEFINITIONS: &str = "\
* **Verdict** (one answer per image): each class scores the image with its most confident box; classes at or above their *suspicious* threshold are candidates; the highest candidate wins; when DF wins but VF reaches the VF-priority threshold the answer is VF (the paper's suggestion); no candidate → *no visible fracture*. The *fracture* operating point keeps only answers at or above the class's high-specificity threshold.
* **Per class, one-vs-rest over images**: TP = truth c and answer c; FN = truth c, answer not c; FP = truth not c, answer c; TN = neither. Accuracy (TP+TN)/N, sensitivity TP/(TP+FN), specificity TN/(TN+FP), each with a Wilson 95 % interval. One-vs-rest accuracy is dominated by true negatives (why the paper shows accuracy 1.0 beside sensitivity 0.79).
* **Micro average**: the four classes' counts pooled, then the ratios. **Macro**: the mean of the four per-class ratios. Their intervals are patient-level bootstraps (1,000 replicates).
* **IoU / Dice**: for each true box of class c in an image answered c, the predicted box of class c with the highest IoU; means over boxes (bootstrap interval by patient). Dice = 2·IoU/(1+IoU) holds per box; the mean Dice is not 2·mean IoU/(1+mean IoU).
* **mAP50, mAP50-95**: COCO rules (pycocotools parity), from the deployed detections (score ≥ 0.05, per-class NMS at IoU 0.7), which can understate COCO mAP computed down to 0.001.
* **ROC / AUC** per class from the image-level class score (the most confident box of that class, 0 without one) against truth = that class.
* **Calibration**: the image-level class scores of all four classes, one-vs-rest, in ten bins; ECE = Σ (n_b/N)·|observed − mean score|.";

const PHANTOM_WARNING: &str = "These images were simulated by the hipfrac phantom. The numbers show that the pipeline detects and classifies the phantom's fractures; they are not evidence of how the model would do on patients.";

fn table_markdown(summary: &Summary, section: Option<&Section>) -> String {
    let mut t = String::from("| Fracture type | Accuracy | Sensitivity | Specificity | IoU | Dice |\n|---|---|---|---|---|---|\n");
    for (m, class) in summary.per_class.iter().zip(FractureClass::ALL) {
        let _ = writeln!(t, "| {} ({}) | {} | {} | {} | {} | {} |", class.full_name(), class.code(), ci(&m.accuracy), ci(&m.sensitivity), ci(&m.specificity), match section {
            Some(s) => ci(&s.iou[class.index()]),
            None => opt(m.mean_iou),
        }, opt(m.mean_dice));
    }
    let micro_se = section.map(|s| ci(&s.micro_se)).unwrap_or_else(|| f2(summary.micro.sensitivity));
    let macro_se = section.map(|s| ci(&s.macro_se)).unwrap_or_else(|| f2(summary.macro_average.sensitivity));
    let _ = writeln!(t, "| Micro average | {} | {} | {} | | |", f2(summary.micro.accuracy), micro_se, f2(summary.micro.specificity));
    let _ = writeln!(t, "| Macro average | {} | {} | {} | | |", f2(summary.macro_average.accuracy), macro_se, f2(summary.macro_average.specificity));
    t
}

fn confusion_markdown(summary: &Summary) -> String {
    let mut t = String::from("| truth \\ answer | DF | VF | SF | UF | none |\n|---|---|---|---|---|---|\n");
    for (i, label) in Label::ALL.iter().enumerate() {
        let row: Vec<String> = summary.confusion[i].iter().map(|v| v.to_string()).collect();
        let _ = writeln!(t, "| {} | {} |", label.code(), row.join(" | "));
    }
    t
}

fn thresholds_markdown(points: &OperatingPoints) -> String {
    let mut t = format!("Thresholds ({}; targets Se ≥ {:.2}, Sp ≥ {:.2}; VF priority {:.3}):\n\n| class | suspicious | fracture |\n|---|---|---|\n", points.chosen_on, points.target_sensitivity, points.target_specificity, points.vf_priority);
    for c in &points.classes {
        let _ = writeln!(t, "| {} | {:.3} | {:.3} |", c.class.code(), c.suspicious, c.fracture);
    }
    t
}

/// The markdown report.
pub fn markdown(predictor: &Predictor, sections: &[Section], context: &ReportContext) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", context.title.as_deref().unwrap_or("hipfrac evaluation"));
    let _ = writeln!(md, "Model `{}` (hash {}), {} px, {} preset.\n", predictor.dir.display(), predictor.model_hash, predictor.size, if predictor.config.width < 1.0 { "nano" } else { "t" });
    if sections.iter().any(|s| s.simulated) {
        let _ = writeln!(md, "> **Phantom results.** {PHANTOM_WARNING}\n");
    }
    for note in &context.notes {
        let _ = writeln!(md, "- {note}");
    }
    if !context.notes.is_empty() {
        md.push('\n');
    }
    md.push_str(&thresholds_markdown(&predictor.points));
    md.push('\n');
    for s in sections {
        let _ = writeln!(md, "## {} — {} images ({}){}\n", s.name, s.cases.len(), s.manifest.display(), if s.simulated { ", phantom" } else { "" });
        let _ = writeln!(md, "mAP50 {}, mAP50-95 {}; AUC per class: {}; ECE {:.3}.\n", opt(s.map.map(|m| m.0)), opt(s.map.map(|m| m.1)), FractureClass::ALL.iter().map(|c| format!("{} {}", c.code(), opt(s.auc[c.index()]))).collect::<Vec<_>>().join(", "), s.ece);
        let _ = writeln!(md, "At the verdict (95 % intervals):\n\n{}", table_markdown(&s.verdict, Some(s)));
        let _ = writeln!(md, "At the high-specificity (fracture) point:\n\n{}", table_markdown(&s.fracture_point, None));
        let _ = writeln!(md, "Confusion matrix (verdict):\n\n{}", confusion_markdown(&s.verdict));
    }
    let _ = writeln!(md, "## Definitions\n\n{DEFINITIONS}\n\n{NOTICE}");
    md
}

fn table_html(summary: &Summary, section: Option<&Section>) -> String {
    let md = table_markdown(summary, section);
    markdown_table_to_html(&md)
}

/// Converts the simple pipe tables this module writes into HTML.
fn markdown_table_to_html(md: &str) -> String {
    let mut h = String::from("<table>");
    for (i, line) in md.lines().filter(|l| l.starts_with('|')).enumerate() {
        if i == 1 {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(|c| c.trim()).collect();
        h.push_str("<tr>");
        for c in cells {
            let tag = if i == 0 { "th" } else { "td" };
            let _ = write!(h, "<{tag}>{}</{tag}>", escape(c));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

fn confusion_html(summary: &Summary) -> String {
    let max = summary.confusion.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let mut h = String::from("<table class=\"confusion\"><tr><th>truth \\ answer</th>");
    for l in Label::ALL {
        let _ = write!(h, "<th>{}</th>", l.code());
    }
    h.push_str("</tr>");
    for (i, l) in Label::ALL.iter().enumerate() {
        let _ = write!(h, "<tr><th>{}</th>", l.code());
        for (j, &v) in summary.confusion[i].iter().enumerate() {
            let alpha = v as f64 / max;
            let colour = if i == j { format!("rgba(0,158,115,{alpha:.2})") } else { format!("rgba(213,94,0,{alpha:.2})") };
            let _ = write!(h, "<td style=\"background:{colour}\">{v}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

fn plots_html(s: &Section) -> String {
    let pr: Vec<Series> = FractureClass::ALL
        .iter()
        .filter_map(|&c| {
            s.pr[c.index()].as_ref().map(|(r, p)| Series { name: format!("{} AP50 {}", c.code(), opt(s.ap50[c.index()])), colour: css_colour(c), points: r.iter().copied().zip(p.iter().copied()).collect(), markers: false })
        })
        .collect();
    let roc: Vec<Series> = FractureClass::ALL
        .iter()
        .filter_map(|&c| {
            s.roc[c.index()].as_ref().map(|points| Series { name: format!("{} AUC {}", c.code(), opt(s.auc[c.index()])), colour: css_colour(c), points: points.iter().map(|p| (p.false_positive_rate, p.true_positive_rate)).collect(), markers: false })
        })
        .collect();
    let calibration = vec![Series {
        name: format!("ECE {:.3}", s.ece),
        colour: "#0072b2".into(),
        points: s.reliability.iter().filter(|b| b.count > 0).map(|b| (b.mean_confidence, b.accuracy)).collect(),
        markers: true,
    }];
    format!(
        "<div class=\"plots\">{}{}{}</div>",
        unit_plot("Precision–recall (box IoU ≥ 0.5)", "recall", "precision", &pr, false),
        unit_plot("ROC (image-level class score)", "1 − specificity", "sensitivity", &roc, true),
        unit_plot("Calibration (class scores)", "mean score", "observed frequency", &calibration, true)
    )
}

/// Up to `n` cases of each kind: correct fractures, misses, false alarms.
fn gallery_html(s: &Section, points: &OperatingPoints, n: usize) -> String {
    let correct = |c: &&Case| c.truth != Label::NoFracture && c.prediction.verdict.label == c.truth;
    let missed = |c: &&Case| c.truth != Label::NoFracture && c.prediction.verdict.label != c.truth;
    let false_alarm = |c: &&Case| c.truth == Label::NoFracture && c.prediction.verdict.label != Label::NoFracture;
    let mut h = String::new();
    let kinds: [(&str, &dyn Fn(&&Case) -> bool); 3] = [("True positives", &correct), ("Misses and wrong types", &missed), ("False alarms", &false_alarm)];
    for (title, filter) in kinds {
        let chosen: Vec<&Case> = s.cases.iter().filter(filter).take(n).collect();
        let _ = write!(h, "<h4>{title} ({} of {})</h4><div class=\"gallery\">", chosen.len(), s.cases.iter().filter(filter).count());
        for case in chosen {
            let note = format!("TRUTH: {}{}", case.truth.code(), if s.simulated { " PHANTOM" } else { "" });
            let picture = hipfrac_dicom::read_radiograph(&case.path).ok().and_then(|image| {
                let shown = verdict::reportable(&case.prediction.detections, points, crate::predict::SHOWN_BOXES);
                let marks = Marks { detections: &shown, truth: &case.truth_boxes, verdict: Some(&case.prediction.verdict), note: Some(note) };
                overlay::render(&image, &marks, 320).ok()
            });
            if let Some(p) = picture {
                let _ = write!(h, "<figure><img src=\"data:image/png;base64,{}\" width=\"{}\" height=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>", base64(&p.to_png()), p.width, p.height, escape(&case.image), escape(&case.image));
            }
        }
        h.push_str("</div>");
    }
    h
}

/// The self-contained HTML report.
pub fn html(predictor: &Predictor, sections: &[Section], context: &ReportContext) -> String {
    let title = context.title.as_deref().unwrap_or("hipfrac evaluation");
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th:first-child,td:first-child{{text-align:left}}\
.warning{{background:#fff3cd;border:1px solid #e0b000;padding:.7em 1em}}.plots{{display:flex;flex-wrap:wrap;gap:1em}}\
.gallery{{display:flex;flex-wrap:wrap;gap:.6em}}figure{{margin:0;font-size:11px}}.confusion td{{text-align:center;min-width:3em}}\
</style></head><body><h1>{}</h1>",
        escape(title),
        escape(title)
    );
    let _ = write!(h, "<p>Model <code>{}</code> (hash {}), input {} px, {} preset. {}</p>", escape(&predictor.dir.display().to_string()), predictor.model_hash, predictor.size, if predictor.config.width < 1.0 { "nano" } else { "t (DAMO-YOLO-T)" }, escape(NOTICE));
    if sections.iter().any(|s| s.simulated) {
        let _ = write!(h, "<p class=\"warning\"><b>Phantom results.</b> {}</p>", escape(PHANTOM_WARNING));
    }
    if !context.notes.is_empty() {
        h.push_str("<ul>");
        for n in &context.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>");
    }
    let thresholds = thresholds_markdown(&predictor.points);
    let (intro, table) = thresholds.split_once("\n\n").unwrap_or((&thresholds, ""));
    let _ = write!(h, "<p>{}</p>{}", escape(intro), markdown_table_to_html(table));
    for (i, s) in sections.iter().enumerate() {
        let table_name = if i == 0 { "laid out as the paper's Table II" } else { "compare with the paper's Table III" };
        let _ = write!(h, "<h2>{} — {} images{}</h2><p><code>{}</code></p>", escape(&s.name), s.cases.len(), if s.simulated { " (phantom)" } else { "" }, escape(&s.manifest.display().to_string()));
        let _ = write!(h, "<p>mAP50 <b>{}</b>, mAP50-95 <b>{}</b>.</p>", opt(s.map.map(|m| m.0)), opt(s.map.map(|m| m.1)));
        let _ = write!(h, "<h3>At the verdict ({table_name}; 95 % intervals)</h3>{}", table_html(&s.verdict, Some(s)));
        let _ = write!(h, "<h3>At the high-specificity (fracture) point</h3>{}", table_html(&s.fracture_point, None));
        let _ = write!(h, "<h3>Confusion matrix (verdict)</h3>{}", confusion_html(&s.verdict));
        let _ = write!(h, "<h3>Plots</h3>{}", plots_html(s));
        let _ = write!(h, "<h3>Gallery</h3><p>Dashed white: true boxes. Coloured: the AI's boxes at or above their class's suspicious threshold (at most 5), with class and score. Banner: the verdict.</p>{}", gallery_html(s, &predictor.points, 4));
    }
    let definitions: String = DEFINITIONS.lines().map(|l| format!("<li>{}</li>", escape(l.trim_start_matches("* ")).replace("**", ""))).collect();
    let _ = write!(h, "<h2>Definitions</h2><ul>{definitions}</ul></body></html>");
    h
}

/// metrics.csv: one row per section × operating point × class (and micro/macro).
pub fn metrics_csv(sections: &[Section]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "operating_point", "class", "tp", "fp", "tn", "fn", "accuracy", "sensitivity", "sensitivity_lower", "sensitivity_upper", "specificity", "specificity_lower", "specificity_upper", "mean_iou", "mean_dice", "matched_boxes", "ap50", "auc"])?;
    let num = |v: f64| if v.is_finite() { format!("{v:.4}") } else { String::new() };
    for s in sections {
        for (point, summary) in [("verdict", &s.verdict), ("fracture", &s.fracture_point)] {
            for (m, class) in summary.per_class.iter().zip(FractureClass::ALL) {
                w.write_record([
                    s.name.clone(),
                    point.into(),
                    class.code().into(),
                    m.counts.tp.to_string(),
                    m.counts.fp.to_string(),
                    m.counts.tn.to_string(),
                    m.counts.fn_.to_string(),
                    num(m.accuracy.value),
                    num(m.sensitivity.value),
                    num(m.sensitivity.lower),
                    num(m.sensitivity.upper),
                    num(m.specificity.value),
                    num(m.specificity.lower),
                    num(m.specificity.upper),
                    m.mean_iou.map(num).unwrap_or_default(),
                    m.mean_dice.map(num).unwrap_or_default(),
                    m.matched_boxes.to_string(),
                    s.ap50[class.index()].map(num).unwrap_or_default(),
                    s.auc[class.index()].map(num).unwrap_or_default(),
                ])?;
            }
            for (name, avg) in [("micro", &summary.micro), ("macro", &summary.macro_average)] {
                let mut row = vec![s.name.clone(), point.into(), name.into(), String::new(), String::new(), String::new(), String::new(), num(avg.accuracy), num(avg.sensitivity), String::new(), String::new(), num(avg.specificity)];
                row.extend(std::iter::repeat_n(String::new(), 7));
                w.write_record(row)?;
            }
        }
    }
    Ok(w.into_inner().context("cannot build metrics.csv")?)
}

/// cases.csv: one row per image.
pub fn cases_csv(sections: &[Section]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "image", "patient", "site", "truth", "verdict", "confidence", "operating_point", "vf_priority_applied", "DF", "VF", "SF", "UF", "best_iou"])?;
    for s in sections {
        for c in &s.cases {
            let p = &c.prediction;
            let best_iou = match c.truth {
                Label::Fracture(class) => c
                    .truth_boxes
                    .iter()
                    .filter(|(k, _)| *k == class)
                    .flat_map(|(_, t)| p.detections.iter().filter(|d| d.class == class).map(move |d| hipfrac_core::iou(t, &d.bbox)))
                    .fold(None, |a: Option<f32>, v| Some(a.map_or(v, |a| a.max(v))))
                    .map(|v| format!("{v:.4}"))
                    .unwrap_or_default(),
                Label::NoFracture => String::new(),
            };
            w.write_record([
                s.name.clone(),
                c.image.clone(),
                c.patient.clone(),
                c.site.clone(),
                c.truth.code().into(),
                p.verdict.label.code().into(),
                format!("{:.4}", p.verdict.confidence),
                serde_json::to_value(p.verdict.operating_point)?.as_str().unwrap_or_default().into(),
                p.verdict.vf_priority_applied.to_string(),
                format!("{:.4}", p.class_scores[0]),
                format!("{:.4}", p.class_scores[1]),
                format!("{:.4}", p.class_scores[2]),
                format!("{:.4}", p.class_scores[3]),
                best_iou,
            ])?;
        }
    }
    Ok(w.into_inner().context("cannot build cases.csv")?)
}

/// Writes report.html, report.md, metrics.csv and cases.csv into `out` (each atomically).
pub fn write_report(out: &Path, predictor: &Predictor, sections: &[Section], context: &ReportContext) -> Result<()> {
    let write = |name: &str, bytes: &[u8]| hipfrac_dicom::atomic::write_atomic(&out.join(name), bytes).with_context(|| format!("cannot write {}", out.join(name).display()));
    write("metrics.csv", &metrics_csv(sections)?)?;
    write("cases.csv", &cases_csv(sections)?)?;
    write("report.md", markdown(predictor, sections, context).as_bytes())?;
    write("report.html", html(predictor, sections, context).as_bytes())
}

/// Chooses the operating points on `manifest` and writes them beside the model.
pub fn calibrate(predictor: &Predictor, manifest: &Path, sensitivity: f64, specificity: f64) -> Result<OperatingPoints> {
    let cases = predict_with_bar(predictor, manifest, "calibrating")?;
    if cases.is_empty() {
        bail!("{}: the manifest lists no images", manifest.display());
    }
    let images: Vec<([f32; 4], Label)> = cases.iter().map(|c| (c.prediction.class_scores, c.truth)).collect();
    let points = verdict::choose(&images, sensitivity, specificity, format!("{} ({} images)", manifest.display(), cases.len()));
    let path = predictor.dir.join("operating_points.json");
    hipfrac_dicom::atomic::write_atomic(&path, &serde_json::to_vec_pretty(&points)?).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(points)
}

pub fn run_calibrate(args: CalibrateArgs) -> Result<Outcome> {
    if !(0.0..=1.0).contains(&args.sensitivity) || !(0.0..=1.0).contains(&args.specificity) {
        bail!("--sensitivity and --specificity must lie in [0, 1]");
    }
    let existing = args.model.join("operating_points.json");
    if existing.exists() && !args.overwrite {
        bail!("{} exists; pass --overwrite to replace it", existing.display());
    }
    let device = device(args.device.as_deref())?;
    let predictor = load_model(&args.model, device)?;
    let points = calibrate(&predictor, &args.data, args.sensitivity, args.specificity)?;
    eprint!("{}", thresholds_markdown(&points));
    eprintln!("written: {}", existing.display());
    Ok(Outcome::Success)
}
