//! The evaluation report's renderings: Markdown, self-contained HTML (tables, plots, a
//! gallery), metrics.csv and cases.csv. Tables are [`Table`] values rendered each way.

use super::{ModelInfo, ReportContext, Section};
use crate::cases::CaseRow;
use crate::format::{ci, f2, opt};
use crate::plot::{base64, unit_plot, Series};
use crate::table::Table;
use crate::ReportError;
use hipfrac_core::{escape_html as escape, Case, FractureClass, Label, OperatingPoints, NOTICE};
use hipfrac_eval::classification::Summary;
use hipfrac_imaging::css_colour;
use hipfrac_imaging::overlay::{self, Marks};
use std::fmt::Write as _;
use std::path::Path;

const DEFINITIONS: &str = "\
* **Verdict** (one answer per image): each class scores the image with its most confident box; classes at or above their *suspicious* threshold are candidates; the highest candidate wins; when DF wins but VF reaches the VF-priority threshold the answer is VF (the paper's suggestion); no candidate → *no visible fracture*. The *fracture* operating point keeps only answers at or above the class's high-specificity threshold.
* **Per class, one-vs-rest over images**: TP = truth c and answer c; FN = truth c, answer not c; FP = truth not c, answer c; TN = neither. Accuracy (TP+TN)/N, sensitivity TP/(TP+FN), specificity TN/(TN+FP), each with a Wilson 95 % interval. One-vs-rest accuracy is dominated by true negatives (why the paper shows accuracy 1.0 beside sensitivity 0.79).
* **Micro average**: the four classes' counts pooled, then the ratios. **Macro**: the mean of the four per-class ratios. Their intervals are patient-level bootstraps (1,000 replicates).
* **IoU / Dice**: for each true box of class c in an image answered c, the predicted box of class c with the highest IoU; means over boxes (bootstrap interval by patient). Dice = 2·IoU/(1+IoU) holds per box; the mean Dice is not 2·mean IoU/(1+mean IoU).
* **mAP50, mAP50-95**: COCO rules (pycocotools parity), from the deployed detections (score ≥ 0.05, per-class NMS at IoU 0.7), which can understate COCO mAP computed down to 0.001.
* **ROC / AUC** per class from the image-level class score (the most confident box of that class, 0 without one) against truth = that class.
* **Any fracture** (fracture or not, whatever the type; images labelled a fracture of unknown type count here only, not in the per-type tables): sensitivity and specificity at the verdict (not assessable = no fracture) with Wilson intervals; AUC of the image's fracture score (its highest class score) over the assessed images, interval by patient bootstrap; localisation = share of fractured images called fractured whose answer's box (the most confident box of the answered type) holds the centre of a true fracture box, and that box's mean IoU with its best true box.
* **Calibration**: the image-level class scores of all four classes, one-vs-rest, in ten bins; ECE = Σ (n_b/N)·|observed − mean score|.";

const PHANTOM_WARNING: &str = "These images were simulated by the hipfrac phantom. The numbers show that the pipeline detects and classifies the phantom's fractures; they are not evidence of how the model would do on patients.";

/// The paper's Table II layout: per class accuracy, sensitivity, specificity, IoU, Dice, then
/// micro and macro averages. With `section`, intervals come from its patient bootstrap.
pub fn verdict_table(summary: &Summary, section: Option<&Section>) -> Table {
    let mut t = Table::new(["Fracture type", "Accuracy", "Sensitivity", "Specificity", "IoU", "Dice"]);
    for (m, class) in summary.per_class.iter().zip(FractureClass::ALL) {
        let iou = match section {
            Some(s) => ci(&s.iou[class.index()]),
            None => opt(m.mean_iou),
        };
        t.row([
            format!("{} ({})", class.full_name(), class.code()),
            ci(&m.accuracy),
            ci(&m.sensitivity),
            ci(&m.specificity),
            iou,
            opt(m.mean_dice),
        ]);
    }
    let micro_se = section
        .map(|s| ci(&s.micro_se))
        .unwrap_or_else(|| f2(summary.micro.sensitivity));
    let macro_se = section
        .map(|s| ci(&s.macro_se))
        .unwrap_or_else(|| f2(summary.macro_average.sensitivity));
    t.row([
        "Micro average".to_string(),
        f2(summary.micro.accuracy),
        micro_se,
        f2(summary.micro.specificity),
    ]);
    t.row([
        "Macro average".to_string(),
        f2(summary.macro_average.accuracy),
        macro_se,
        f2(summary.macro_average.specificity),
    ]);
    t
}

/// Truth (rows) against the answer (columns), five labels.
pub fn confusion_table(summary: &Summary) -> Table {
    let mut t = Table::new(std::iter::once("truth \\ answer").chain(Label::ALL.iter().map(|l| l.code())));
    for (i, label) in Label::ALL.iter().enumerate() {
        t.row(std::iter::once(label.code().to_string()).chain(summary.confusion[i].iter().map(|v| v.to_string())));
    }
    t
}

/// The operating points, one row per class, and a sentence saying where they came from.
pub fn thresholds_table(points: &OperatingPoints) -> (String, Table) {
    let intro = format!(
        "Thresholds ({}; targets Se ≥ {:.2}, Sp ≥ {:.2}; VF priority {:.3}):",
        points.chosen_on, points.target_sensitivity, points.target_specificity, points.vf_priority
    );
    let mut t = Table::new(["class", "suspicious", "fracture"]);
    for c in &points.classes {
        t.row([
            c.class.code().to_string(),
            format!("{:.3}", c.suspicious),
            format!("{:.3}", c.fracture),
        ]);
    }
    (intro, t)
}

fn model_line(model: &ModelInfo, long: bool) -> String {
    let preset = match (model.preset, long) {
        (Some(p), true) => p.description(),
        (Some(p), false) => p.name(),
        (None, _) => "custom",
    };
    format!(
        "Model `{}` (hash {}), {} px, {preset} preset.",
        model.dir.display(),
        model.hash,
        model.input_size
    )
}

/// The markdown report.
pub fn markdown(model: &ModelInfo, sections: &[Section], context: &ReportContext) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", context.title.as_deref().unwrap_or("hipfrac evaluation"));
    let _ = writeln!(md, "{}\n", model_line(model, false));
    if sections.iter().any(|s| s.simulated) {
        let _ = writeln!(md, "> **Phantom results.** {PHANTOM_WARNING}\n");
    }
    for note in &context.notes {
        let _ = writeln!(md, "- {note}");
    }
    if !context.notes.is_empty() {
        md.push('\n');
    }
    let (intro, thresholds) = thresholds_table(&model.points);
    let _ = writeln!(md, "{intro}\n\n{}", thresholds.markdown());
    for s in sections {
        let _ = writeln!(
            md,
            "## {} — {} images ({}){}\n",
            s.name,
            s.cases.len(),
            s.manifest.display(),
            if s.simulated { ", phantom" } else { "" }
        );
        let aucs = FractureClass::ALL
            .iter()
            .map(|c| format!("{} {}", c.code(), opt(s.auc[c.index()])))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            md,
            "mAP50 {}, mAP50-95 {}; AUC per class: {aucs}; ECE {:.3}.\n",
            opt(s.map.map(|m| m.0)),
            opt(s.map.map(|m| m.1)),
            s.ece
        );
        let _ = writeln!(md, "{}.\n", super::any_fracture_line(&s.any));
        if s.untyped() > 0 {
            let _ = writeln!(
                md,
                "{} image(s) are labelled a fracture of unknown type: the per-type tables leave them out.\n",
                s.untyped()
            );
        }
        if let Some(note) = s.not_assessable_note() {
            let _ = writeln!(md, "{note}\n");
        }
        let _ = writeln!(
            md,
            "At the verdict (95 % intervals):\n\n{}",
            verdict_table(&s.verdict, Some(s)).markdown()
        );
        let _ = writeln!(
            md,
            "At the high-specificity (fracture) point:\n\n{}",
            verdict_table(&s.fracture_point, None).markdown()
        );
        let _ = writeln!(
            md,
            "Confusion matrix (verdict):\n\n{}",
            confusion_table(&s.verdict).markdown()
        );
    }
    let _ = writeln!(md, "## Definitions\n\n{DEFINITIONS}\n\n{NOTICE}");
    md
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
            let colour = if i == j {
                format!("rgba(0,158,115,{alpha:.2})")
            } else {
                format!("rgba(213,94,0,{alpha:.2})")
            };
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
            s.pr[c.index()].as_ref().map(|(r, p)| Series {
                name: format!("{} AP50 {}", c.code(), opt(s.ap50[c.index()])),
                colour: css_colour(c),
                points: r.iter().copied().zip(p.iter().copied()).collect(),
                markers: false,
            })
        })
        .collect();
    let roc: Vec<Series> = FractureClass::ALL
        .iter()
        .filter_map(|&c| {
            s.roc[c.index()].as_ref().map(|points| Series {
                name: format!("{} AUC {}", c.code(), opt(s.auc[c.index()])),
                colour: css_colour(c),
                points: points
                    .iter()
                    .map(|p| (p.false_positive_rate, p.true_positive_rate))
                    .collect(),
                markers: false,
            })
        })
        .collect();
    let calibration = vec![Series {
        name: format!("ECE {:.3}", s.ece),
        colour: "#0072b2".into(),
        points: s
            .reliability
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| (b.mean_confidence, b.accuracy))
            .collect(),
        markers: true,
    }];
    format!(
        "<div class=\"plots\">{}{}{}</div>",
        unit_plot("Precision–recall (box IoU ≥ 0.5)", "recall", "precision", &pr, false),
        unit_plot(
            "ROC (image-level class score)",
            "1 − specificity",
            "sensitivity",
            &roc,
            true
        ),
        unit_plot(
            "Calibration (class scores)",
            "mean score",
            "observed frequency",
            &calibration,
            true
        )
    )
}

/// Up to `n` cases of each kind: correct fractures, misses, false alarms.
fn gallery_html(s: &Section, points: &OperatingPoints, n: usize) -> String {
    // A fracture of unknown type is found when any type is answered.
    let right = |c: &&Case| {
        let answer = c.prediction.label_for_tables();
        answer == c.truth || (c.truth == Label::UntypedFracture && answer.is_fracture())
    };
    let correct = |c: &&Case| c.truth != Label::NoFracture && right(c);
    let missed = |c: &&Case| c.truth != Label::NoFracture && !right(c);
    let false_alarm = |c: &&Case| c.truth == Label::NoFracture && c.prediction.label_for_tables() != Label::NoFracture;
    let mut h = String::new();
    type Kind<'a> = (&'a str, &'a dyn Fn(&&Case) -> bool);
    let kinds: [Kind; 3] = [
        ("True positives", &correct),
        ("Misses and wrong types", &missed),
        ("False alarms", &false_alarm),
    ];
    for (title, filter) in kinds {
        let chosen: Vec<&Case> = s.cases.iter().filter(filter).take(n).collect();
        let _ = write!(
            h,
            "<h4>{title} ({} of {})</h4><div class=\"gallery\">",
            chosen.len(),
            s.cases.iter().filter(filter).count()
        );
        for case in chosen {
            let note = format!(
                "TRUTH: {}{}",
                case.truth.code(),
                if s.simulated { " PHANTOM" } else { "" }
            );
            let picture = hipfrac_dicom::read_radiograph(&case.path).ok().and_then(|image| {
                let shown = case.prediction.shown_boxes(points);
                // True boxes are drawn alike whatever their type (the class is not shown).
                let truth: Vec<(FractureClass, hipfrac_core::BBox)> = case
                    .truth_boxes
                    .iter()
                    .copied()
                    .chain(case.untyped_boxes.iter().map(|b| (FractureClass::ALL[0], *b)))
                    .collect();
                let marks = Marks {
                    detections: &shown,
                    truth: &truth,
                    hips: &case.prediction.hips,
                    answer: Some(&case.prediction.answer),
                    note: Some(note),
                };
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
pub fn html(model: &ModelInfo, sections: &[Section], context: &ReportContext) -> String {
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
    let preset = model.preset.map_or("custom", |p| p.description());
    let _ = write!(
        h,
        "<p>Model <code>{}</code> (hash {}), input {} px, {preset} preset. {}</p>",
        escape(&model.dir.display().to_string()),
        escape(&model.hash),
        model.input_size,
        escape(NOTICE)
    );
    if sections.iter().any(|s| s.simulated) {
        let _ = write!(
            h,
            "<p class=\"warning\"><b>Phantom results.</b> {}</p>",
            escape(PHANTOM_WARNING)
        );
    }
    if !context.notes.is_empty() {
        h.push_str("<ul>");
        for n in &context.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>");
    }
    let (intro, thresholds) = thresholds_table(&model.points);
    let _ = write!(h, "<p>{}</p>{}", escape(&intro), thresholds.html(""));
    for (i, s) in sections.iter().enumerate() {
        let table_name = if i == 0 {
            "laid out as the paper's Table II"
        } else {
            "compare with the paper's Table III"
        };
        let _ = write!(
            h,
            "<h2>{} — {} images{}</h2><p><code>{}</code></p>",
            escape(&s.name),
            s.cases.len(),
            if s.simulated { " (phantom)" } else { "" },
            escape(&s.manifest.display().to_string())
        );
        let _ = write!(
            h,
            "<p>mAP50 <b>{}</b>, mAP50-95 <b>{}</b>.</p>",
            opt(s.map.map(|m| m.0)),
            opt(s.map.map(|m| m.1))
        );
        let _ = write!(h, "<p>{}.</p>", escape(&super::any_fracture_line(&s.any)));
        if s.untyped() > 0 {
            let _ = write!(
                h,
                "<p>{} image(s) are labelled a fracture of unknown type: the per-type tables leave them out.</p>",
                s.untyped()
            );
        }
        if let Some(note) = s.not_assessable_note() {
            let _ = write!(h, "<p class=\"warning\">{}</p>", escape(&note));
        }
        let _ = write!(
            h,
            "<h3>At the verdict ({table_name}; 95 % intervals)</h3>{}",
            verdict_table(&s.verdict, Some(s)).html("")
        );
        let _ = write!(
            h,
            "<h3>At the high-specificity (fracture) point</h3>{}",
            verdict_table(&s.fracture_point, None).html("")
        );
        let _ = write!(h, "<h3>Confusion matrix (verdict)</h3>{}", confusion_html(&s.verdict));
        let _ = write!(h, "<h3>Plots</h3>{}", plots_html(s));
        let _ = write!(h, "<h3>Gallery</h3><p>Dashed white: true boxes. Coloured: the AI's boxes at or above their class's suspicious threshold (at most 5), with class and score. Banner: the verdict.</p>{}", gallery_html(s, &model.points, 4));
    }
    let definitions: String = DEFINITIONS
        .lines()
        .map(|l| format!("<li>{}</li>", escape(l.trim_start_matches("* ")).replace("**", "")))
        .collect();
    let _ = write!(h, "<h2>Definitions</h2><ul>{definitions}</ul></body></html>");
    h
}

/// metrics.csv: one row per section × operating point × class (and micro/macro).
pub fn metrics_csv(sections: &[Section]) -> Vec<u8> {
    let mut t = Table::new([
        "section",
        "operating_point",
        "class",
        "tp",
        "fp",
        "tn",
        "fn",
        "accuracy",
        "sensitivity",
        "sensitivity_lower",
        "sensitivity_upper",
        "specificity",
        "specificity_lower",
        "specificity_upper",
        "mean_iou",
        "mean_dice",
        "matched_boxes",
        "ap50",
        "auc",
    ]);
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            String::new()
        }
    };
    for s in sections {
        for (point, summary) in [("verdict", &s.verdict), ("fracture", &s.fracture_point)] {
            for (m, class) in summary.per_class.iter().zip(FractureClass::ALL) {
                t.row([
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
                ]);
            }
            if point == "verdict" {
                let a = &s.any;
                t.row([
                    s.name.clone(),
                    point.into(),
                    "any".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    num(a.sensitivity.value),
                    num(a.sensitivity.lower),
                    num(a.sensitivity.upper),
                    num(a.specificity.value),
                    num(a.specificity.lower),
                    num(a.specificity.upper),
                    a.mean_iou.map(num).unwrap_or_default(),
                    String::new(),
                    a.localisable.to_string(),
                    String::new(),
                    a.auc.map(|e| num(e.value)).unwrap_or_default(),
                ]);
            }
            for (name, avg) in [("micro", &summary.micro), ("macro", &summary.macro_average)] {
                t.row([
                    s.name.clone(),
                    point.into(),
                    name.into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    num(avg.accuracy),
                    num(avg.sensitivity),
                    String::new(),
                    String::new(),
                    num(avg.specificity),
                ]);
            }
        }
    }
    t.csv()
}

/// cases.csv: one row per image ([`CaseRow`]; `hipfrac study report` reads it back).
pub fn cases_csv(sections: &[Section]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for s in sections {
        for c in &s.cases {
            w.serialize(CaseRow::new(&s.name, c)).expect("CSV into memory");
        }
    }
    hipfrac_core::csv_safe::neutralise(&w.into_inner().expect("CSV into memory"))
}

/// Writes report.html, report.md, metrics.csv and cases.csv into `out` (each atomically).
pub fn write_report(
    out: &Path,
    model: &ModelInfo,
    sections: &[Section],
    context: &ReportContext,
) -> Result<(), ReportError> {
    let write = |name: &str, bytes: &[u8]| {
        hipfrac_dicom::atomic::write_atomic(&out.join(name), bytes).map_err(ReportError::Write)
    };
    write("metrics.csv", &metrics_csv(sections))?;
    write("cases.csv", &cases_csv(sections))?;
    // The any-fracture measures with their intervals, per section, for scripts.
    let any: serde_json::Map<String, serde_json::Value> = sections
        .iter()
        .map(|s| {
            let mut value = serde_json::to_value(&s.any).expect("measures serialise");
            value["images"] = s.cases.len().into();
            value["not_assessable"] = s.not_assessable().0.into();
            (s.name.clone(), value)
        })
        .collect();
    write(
        "any_fracture.json",
        &serde_json::to_vec_pretty(&any).expect("measures serialise"),
    )?;
    write("report.md", markdown(model, sections, context).as_bytes())?;
    write("report.html", html(model, sections, context).as_bytes())
}
