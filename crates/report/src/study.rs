//! The reader study's report: per reader and phase Se/Sp (the paper's Table III) with mean
//! (SD), the AI alone, readers in ROC space, Obuchowski–Rockette MRMC, McNemar and κ — as
//! report.html, tables.csv and stats.json.

use crate::format::{f2, p3};
use crate::plot::{unit_plot, Series};
use crate::table::Table;
use crate::ReportError;
use hipfrac_core::{escape_html as escape, FractureClass, Label};
use hipfrac_eval::classification::{summarize, ImageOutcome, Summary};
use hipfrac_eval::study::{analyse, Read, StudyReport};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A reads table that cannot be used, naming the file and line.
#[derive(Debug, thiserror::Error)]
pub enum ReadsError {
    #[error("{}: cannot read the reads table", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{}: the header must name reader, phase, case and label (found: {found})", path.display())]
    Header { path: PathBuf, found: String },
    #[error("{}: line {line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: no reads", path.display())]
    Empty { path: PathBuf },
}

/// Reads a reads table: `reader,phase,case,label[,confidence][,seconds]` with a header.
pub fn read_reads(path: &Path) -> Result<Vec<Read>, ReadsError> {
    let csv_error = |source| ReadsError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(csv_error)?;
    let headers = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let (Some(r), Some(p), Some(c), Some(l)) = (column("reader"), column("phase"), column("case"), column("label"))
    else {
        return Err(ReadsError::Header {
            path: path.to_path_buf(),
            found: headers.iter().collect::<Vec<_>>().join(","),
        });
    };
    let (conf, secs) = (column("confidence"), column("seconds"));
    let mut reads = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let at = |message: String| ReadsError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        let record = record.map_err(csv_error)?;
        let field = |k: usize| hipfrac_core::csv_safe::restore(record.get(k).unwrap_or("")).trim();
        let label: Label = field(l)
            .parse()
            .map_err(|e: hipfrac_core::ParseLabelError| at(e.to_string()))?;
        let number = |k: Option<usize>| -> Result<Option<f64>, ReadsError> {
            match k.map(field).filter(|v| !v.is_empty()) {
                Some(v) => v
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| at(format!("{v:?} is not a number"))),
                None => Ok(None),
            }
        };
        if field(r).is_empty() || field(p).is_empty() || field(c).is_empty() {
            return Err(at("reader, phase and case must not be empty".into()));
        }
        reads.push(Read {
            reader: field(r).into(),
            phase: field(p).into(),
            case: field(c).into(),
            label,
            confidence: number(conf)?,
            seconds: number(secs)?,
        });
    }
    if reads.is_empty() {
        return Err(ReadsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(reads)
}

fn summary_row(name: &str, s: &Summary) -> String {
    let mut row = format!("<tr><td>{}</td>", escape(name));
    for m in &s.per_class {
        let _ = write!(
            row,
            "<td>{}</td><td>{}</td>",
            f2(m.sensitivity.value),
            f2(m.specificity.value)
        );
    }
    let _ = write!(
        row,
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        f2(s.micro.sensitivity),
        f2(s.micro.specificity),
        f2(s.macro_average.sensitivity),
        f2(s.macro_average.specificity)
    );
    row
}

fn header() -> String {
    let mut h = String::from("<tr><th rowspan=2></th>");
    for c in FractureClass::ALL {
        let _ = write!(h, "<th colspan=2>{}</th>", c.code());
    }
    h.push_str("<th colspan=2>Micro</th><th colspan=2>Macro</th></tr><tr>");
    for _ in 0..6 {
        h.push_str("<th>Se</th><th>Sp</th>");
    }
    h.push_str("</tr>");
    h
}

/// Each reader in each phase as a point in ROC space (micro-averaged over the four classes),
/// the AI alone as another.
fn plot(report: &StudyReport, ai: Option<&Summary>) -> String {
    const COLOURS: [&str; 6] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"];
    let mut series: Vec<Series> = report
        .phases
        .iter()
        .enumerate()
        .map(|(k, p)| Series {
            name: format!("phase {p}"),
            colour: COLOURS[k % COLOURS.len()].into(),
            points: report
                .readers
                .iter()
                .map(|r| {
                    let s = &report.per_reader[&(r.clone(), p.clone())];
                    (1.0 - s.micro.specificity, s.micro.sensitivity)
                })
                .collect(),
            markers: true,
        })
        .collect();
    if let Some(ai) = ai {
        series.push(Series {
            name: "AI alone".into(),
            colour: "#000000".into(),
            points: vec![(1.0 - ai.micro.specificity, ai.micro.sensitivity)],
            markers: true,
        });
    }
    format!(
        "<h2>Readers in ROC space (micro averages)</h2>{}",
        unit_plot("Each reader per phase", "1 − specificity", "sensitivity", &series, true)
    )
}

/// The HTML report.
pub fn html(report: &StudyReport, ai: Option<&Summary>) -> String {
    let mut h = String::from("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hipfrac reader study</title><style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child{text-align:left}</style></head><body><h1>Reader study</h1>");
    let _ = write!(
        h,
        "<p>{} readers × {} phases ({}) × {} cases read by everyone in every phase.</p>",
        report.readers.len(),
        report.phases.len(),
        escape(&report.phases.join(", ")),
        report.cases.len()
    );
    for w in &report.warnings {
        let _ = write!(h, "<p>⚠ {}</p>", escape(w));
    }
    h.push_str("<h2>Sensitivity and specificity per reader and phase (the paper's Table III)</h2><table>");
    h.push_str(&header());
    for p in &report.phases {
        for r in &report.readers {
            h.push_str(&summary_row(
                &format!("{r} · {p}"),
                &report.per_reader[&(r.clone(), p.clone())],
            ));
        }
        let rows = &report.averages[p];
        let mut avg = format!("<tr><td><b>mean (SD) · {}</b></td>", escape(p));
        for (se, sp) in rows {
            let _ = write!(
                avg,
                "<td>{} ({})</td><td>{} ({})</td>",
                f2(se.mean),
                f2(se.sd),
                f2(sp.mean),
                f2(sp.sd)
            );
        }
        avg.push_str("</tr>");
        h.push_str(&avg);
    }
    if let Some(ai) = ai {
        h.push_str(&summary_row("AI alone", ai));
    }
    h.push_str("</table>");
    h.push_str(&plot(report, ai));
    h.push_str("<h2>Aided vs unaided: Obuchowski–Rockette (Hillis ddf), figure of merit = proportion of cases read correctly</h2><table><tr><th>unaided</th><th>aided</th><th>FOM unaided</th><th>FOM aided</th><th>difference (95 % CI)</th><th>F</th><th>ddf</th><th>p</th></tr>");
    for (u, a, r) in &report.mrmc {
        match r {
            Some(r) => {
                let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3} ({:.3} to {:.3})</td><td>{:.2}</td><td>{:.1}</td><td>{}</td></tr>", escape(u), escape(a), f2(r.fom[0]), f2(r.fom[1]), r.difference, r.ci95.0, r.ci95.1, r.f, r.ddf, p3(r.p_value));
            }
            None => {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td colspan=6>needs at least 2 readers and 2 cases</td></tr>",
                    escape(u),
                    escape(a)
                );
            }
        }
    }
    h.push_str("</table><h2>McNemar per reader (correct / wrong, paired by case; exact binomial when b + c &lt; 25)</h2><table><tr><th>reader</th><th>phases</th><th>right only unaided (b)</th><th>right only aided (c)</th><th>test</th><th>p</th></tr>");
    for (reader, tests) in &report.mcnemar {
        for (u, a, t) in tests {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(reader),
                escape(u),
                escape(a),
                t.b,
                t.c,
                if t.exact {
                    "exact".to_string()
                } else {
                    format!("χ² {:.2}", t.statistic.unwrap_or(f64::NAN))
                },
                p3(t.p_value)
            );
        }
    }
    h.push_str("</table><h2>Agreement (κ, five labels)</h2><table><tr><th>phase</th><th>Fleiss κ (all readers)</th><th>Cohen κ per pair</th></tr>");
    for p in &report.phases {
        let pairs: Vec<String> = report.cohen[p]
            .iter()
            .map(|(a, b, k)| format!("{a}–{b} {}", k.map(f2).unwrap_or_else(|| "–".into())))
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(p),
            report.fleiss[p].map(f2).unwrap_or_else(|| "–".into()),
            escape(&pairs.join("; "))
        );
    }
    h.push_str("</table>");
    if !report.intra.is_empty() {
        h.push_str(
            "<h2>Intra-reader agreement (first two unaided phases)</h2><table><tr><th>reader</th><th>Cohen κ</th></tr>",
        );
        for (r, k) in &report.intra {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(r),
                k.map(f2).unwrap_or_else(|| "–".into())
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Definitions</h2><p>Per class, one-vs-rest over cases (as the model's evaluation); micro = pooled counts, macro = mean of the four classes; SD across readers. McNemar compares each reader's correctness (label = truth) between phases. The OR analysis treats readers and cases as random; covariances by the jackknife over cases; denominator degrees of freedom by Hillis (2007).</p></body></html>");
    h
}

/// tables.csv: reader, phase, class, counts, Se and Sp with Wilson intervals.
pub fn tables_csv(report: &StudyReport, ai: Option<&Summary>) -> Vec<u8> {
    let mut t = Table::new([
        "reader",
        "phase",
        "class",
        "tp",
        "fp",
        "tn",
        "fn",
        "sensitivity",
        "sensitivity_lower",
        "sensitivity_upper",
        "specificity",
        "specificity_lower",
        "specificity_upper",
    ]);
    let mut rows: Vec<(String, String, &Summary)> = report
        .per_reader
        .iter()
        .map(|((r, p), s)| (r.clone(), p.clone(), s))
        .collect();
    if let Some(ai) = ai {
        rows.push(("AI".into(), "AI alone".into(), ai));
    }
    for (reader, phase, s) in rows {
        for m in &s.per_class {
            t.row([
                reader.clone(),
                phase.clone(),
                m.class.code().to_string(),
                m.counts.tp.to_string(),
                m.counts.fp.to_string(),
                m.counts.tn.to_string(),
                m.counts.fn_.to_string(),
                format!("{:.4}", m.sensitivity.value),
                format!("{:.4}", m.sensitivity.lower),
                format!("{:.4}", m.sensitivity.upper),
                format!("{:.4}", m.specificity.value),
                format!("{:.4}", m.specificity.lower),
                format!("{:.4}", m.specificity.upper),
            ]);
        }
    }
    t.csv()
}

/// What the study report found, for the command line's summary.
pub struct StudyOutcome {
    pub report: StudyReport,
    /// How many study cases the AI's cases.csv covered, when given.
    pub ai_cases: Option<usize>,
}

/// Reads the reads and the truth (and the AI's cases.csv), analyses the study and writes
/// tables.csv, stats.json and report.html into `out`, each atomically.
pub fn write_report(
    reads_path: &Path,
    truth_path: &Path,
    aided: &[String],
    ai_path: Option<&Path>,
    out: &Path,
) -> Result<StudyOutcome, ReportError> {
    let reads = read_reads(reads_path)?;
    let truth: BTreeMap<String, Label> = hipfrac_data::manifest::read(truth_path)?
        .into_iter()
        .map(|r| (r.image, r.label))
        .collect();
    let report = analyse(&reads, &truth, aided).map_err(|e| ReportError::Study {
        path: reads_path.to_path_buf(),
        source: e.into(),
    })?;
    let mut ai_cases = None;
    let ai = match ai_path {
        Some(path) => {
            let verdicts: BTreeMap<String, Label> = crate::cases::read(path)?
                .into_iter()
                .map(|r| (r.image, r.verdict))
                .collect();
            let outcomes: Vec<ImageOutcome> = report
                .cases
                .iter()
                .filter_map(|c| {
                    verdicts.get(c).map(|v| ImageOutcome {
                        image: c.clone(),
                        patient: c.clone(),
                        truth: truth[c],
                        answer: *v,
                        truth_boxes: Vec::new(),
                        predicted_boxes: Vec::new(),
                    })
                })
                .collect();
            ai_cases = Some(outcomes.len());
            (!outcomes.is_empty()).then(|| summarize(&outcomes))
        }
        None => None,
    };
    let write = |name: &str, bytes: &[u8]| {
        hipfrac_dicom::atomic::write_atomic(&out.join(name), bytes).map_err(ReportError::Write)
    };
    write("tables.csv", &tables_csv(&report, ai.as_ref()))?;
    let stats = StatsJson {
        mrmc: &report.mrmc,
        mcnemar: &report.mcnemar,
        fleiss: &report.fleiss,
        intra: &report.intra,
        warnings: &report.warnings,
    };
    write(
        "stats.json",
        &serde_json::to_vec_pretty(&stats).expect("statistics serialise"),
    )?;
    write("report.html", html(&report, ai.as_ref()).as_bytes())?;
    Ok(StudyOutcome { report, ai_cases })
}

#[derive(serde::Serialize)]
struct StatsJson<'a> {
    mrmc: &'a Vec<(String, String, Option<hipfrac_eval::study::OrHillis>)>,
    mcnemar: &'a BTreeMap<String, Vec<(String, String, hipfrac_eval::study::McNemar)>>,
    fleiss: &'a BTreeMap<String, Option<f64>>,
    intra: &'a Vec<(String, Option<f64>)>,
    warnings: &'a Vec<String>,
}
