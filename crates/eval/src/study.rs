//! Reader-study statistics: the paper's Table III per reader and phase, agreement (Cohen,
//! Fleiss, intra-reader κ), McNemar per reader between phases, and the Obuchowski–Rockette
//! multi-reader multi-case analysis with Hillis' denominator degrees of freedom.
//!
//! A study is a table of reads `(reader, phase, case, label)`; the truth is one label per case.
//! Phases are named by the study (e.g. `I`, `II`, `III`); "AI alone" can enter as a reader.

use crate::classification::{summarize, ImageOutcome, Summary};
use hipfrac_core::Label;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One read of one case by one reader in one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Read {
    pub reader: String,
    pub phase: String,
    pub case: String,
    pub label: Label,
    /// The reader's confidence, if the study asked for it.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Seconds spent on the case.
    #[serde(default)]
    pub seconds: Option<f64>,
}

/// Cohen's κ of two raters over the same items (unweighted, over the labels they use). `None` when the
/// lists are empty or of different lengths, or when chance agreement is 1 (κ undefined).
pub fn cohen_kappa(a: &[Label], b: &[Label]) -> Option<f64> {
    if a.is_empty() || a.len() != b.len() {
        return None;
    }
    let n = a.len() as f64;
    const L: usize = Label::EVERY.len();
    let mut table = [[0f64; L]; L];
    for (x, y) in a.iter().zip(b) {
        table[x.index()][y.index()] += 1.0;
    }
    let observed = (0..L).map(|i| table[i][i]).sum::<f64>() / n;
    let expected = (0..L)
        .map(|i| table[i].iter().sum::<f64>() * (0..L).map(|j| table[j][i]).sum::<f64>())
        .sum::<f64>()
        / (n * n);
    (expected < 1.0).then(|| (observed - expected) / (1.0 - expected))
}

/// Fleiss' κ: `items[k]` holds the labels all raters gave item k (the same number of raters
/// for every item, at least two). `None` when undefined.
pub fn fleiss_kappa(items: &[Vec<Label>]) -> Option<f64> {
    let raters = items.first()?.len();
    if raters < 2 || items.iter().any(|i| i.len() != raters) {
        return None;
    }
    let (n, m) = (items.len() as f64, raters as f64);
    let mut totals = [0f64; Label::EVERY.len()];
    let mut agreement = 0.0;
    for item in items {
        let mut counts = [0f64; Label::EVERY.len()];
        for l in item {
            counts[l.index()] += 1.0;
        }
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
        agreement += (counts.iter().map(|c| c * c).sum::<f64>() - m) / (m * (m - 1.0));
    }
    let p_bar = agreement / n;
    let p_e: f64 = totals.iter().map(|t| (t / (n * m)).powi(2)).sum();
    (p_e < 1.0).then(|| (p_bar - p_e) / (1.0 - p_e))
}

/// McNemar's test of paired correctness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Right in the first condition, wrong in the second.
    pub b: u64,
    /// Wrong in the first, right in the second.
    pub c: u64,
    /// True when the exact binomial test was used (b + c < 25).
    pub exact: bool,
    /// χ² with continuity correction (the asymptotic test only).
    pub statistic: Option<f64>,
    pub p_value: f64,
}

/// McNemar's test: exact two-sided binomial (b ~ Bin(b + c, ½)) when b + c < 25, else χ²(1)
/// with continuity correction (|b − c| − 1)² / (b + c).
pub fn mcnemar(b: u64, c: u64) -> McNemar {
    let n = b + c;
    if n == 0 {
        return McNemar {
            b,
            c,
            exact: true,
            statistic: None,
            p_value: 1.0,
        };
    }
    if n < 25 {
        let k = b.min(c);
        // P(X ≤ k) for X ~ Bin(n, ½), summed in log space.
        let ln_half_n = n as f64 * 0.5f64.ln();
        let mut cdf = 0.0;
        let mut ln_choose = 0.0; // ln C(n, 0)
        for i in 0..=k {
            if i > 0 {
                ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
            }
            cdf += (ln_choose + ln_half_n).exp();
        }
        return McNemar {
            b,
            c,
            exact: true,
            statistic: None,
            p_value: (2.0 * cdf).min(1.0),
        };
    }
    let d = (b as f64 - c as f64).abs() - 1.0;
    let statistic = d.max(0.0).powi(2) / n as f64;
    let p_value = chi_square_1_survival(statistic);
    McNemar {
        b,
        c,
        exact: false,
        statistic: Some(statistic),
        p_value,
    }
}

/// P(χ²₁ > x) = erfc(√(x/2)).
fn chi_square_1_survival(x: f64) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    ChiSquared::new(1.0).expect("1 degree of freedom").sf(x)
}

/// The Obuchowski–Rockette analysis of two modalities (e.g. unaided vs aided) read by the same
/// readers on the same cases, with the figure of merit = proportion of cases read correctly
/// (five labels), covariances by the jackknife over cases, and Hillis' (2007) denominator
/// degrees of freedom (random readers, random cases).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrHillis {
    pub readers: usize,
    pub cases: usize,
    /// Figure of merit per modality (reader average), and per reader `[modality][reader]`.
    pub fom: [f64; 2],
    pub fom_per_reader: [Vec<f64>; 2],
    /// Second minus first.
    pub difference: f64,
    pub ci95: (f64, f64),
    pub ms_t: f64,
    pub ms_tr: f64,
    pub var: f64,
    pub cov1: f64,
    pub cov2: f64,
    pub cov3: f64,
    pub f: f64,
    pub ddf: f64,
    pub p_value: f64,
}

/// Runs [`OrHillis`] on `correct[modality][reader][case]` (1.0 right, 0.0 wrong; any figure of
/// merit that is a mean over cases works). `None` with fewer than 2 readers or 2 cases, or
/// unequal shapes.
pub fn or_hillis(correct: &[Vec<Vec<f64>>; 2]) -> Option<OrHillis> {
    let readers = correct[0].len();
    let cases = correct[0].first()?.len();
    if readers < 2 || cases < 2 || correct[1].len() != readers || correct.iter().flatten().any(|r| r.len() != cases) {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let theta: Vec<Vec<f64>> = correct.iter().map(|m| m.iter().map(|r| mean(r)).collect()).collect();
    // Jackknife pseudo-FOMs: θ_ij with case k left out.
    let c = cases as f64;
    let jack: Vec<Vec<Vec<f64>>> = correct
        .iter()
        .map(|m| {
            m.iter()
                .map(|r| {
                    let total: f64 = r.iter().sum();
                    r.iter().map(|x| (total - x) / (c - 1.0)).collect()
                })
                .collect()
        })
        .collect();
    let jmean: Vec<Vec<f64>> = jack.iter().map(|m| m.iter().map(|r| mean(r)).collect()).collect();
    let cov = |i: usize, j: usize, k: usize, l: usize| -> f64 {
        (c - 1.0) / c
            * (0..cases)
                .map(|n| (jack[i][j][n] - jmean[i][j]) * (jack[k][l][n] - jmean[k][l]))
                .sum::<f64>()
    };
    let (mut var, mut cov1, mut cov2, mut cov3) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..2 {
        for j in 0..readers {
            for k in 0..2 {
                for l in 0..readers {
                    let v = cov(i, j, k, l);
                    match (i == k, j == l) {
                        (true, true) => var.push(v),
                        (false, true) => cov1.push(v),
                        (true, false) => cov2.push(v),
                        (false, false) => cov3.push(v),
                    }
                }
            }
        }
    }
    let (var, cov1, cov2, cov3) = (mean(&var), mean(&cov1), mean(&cov2), mean(&cov3));
    let r = readers as f64;
    let modality_mean = [mean(&theta[0]), mean(&theta[1])];
    let grand = (modality_mean[0] + modality_mean[1]) / 2.0;
    let reader_mean: Vec<f64> = (0..readers).map(|j| (theta[0][j] + theta[1][j]) / 2.0).collect();
    let ms_t = r * modality_mean.iter().map(|m| (m - grand).powi(2)).sum::<f64>(); // T − 1 = 1
    let ms_tr = (0..2)
        .flat_map(|i| (0..readers).map(move |j| (i, j)))
        .map(|(i, j)| (theta[i][j] - modality_mean[i] - reader_mean[j] + grand).powi(2))
        .sum::<f64>()
        / (r - 1.0);
    let error = ms_tr + r * (cov2 - cov3).max(0.0);
    let f = if error > 0.0 { ms_t / error } else { f64::NAN };
    let ddf = if ms_tr > 0.0 {
        error * error / (ms_tr * ms_tr / (r - 1.0))
    } else {
        f64::INFINITY
    };
    let difference = modality_mean[1] - modality_mean[0];
    let se = (2.0 / r * error).sqrt();
    use statrs::distribution::{ContinuousCDF, FisherSnedecor, StudentsT};
    let p_value = if f.is_finite() && ddf.is_finite() {
        FisherSnedecor::new(1.0, ddf).map(|d| d.sf(f)).unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    let t = if ddf.is_finite() {
        StudentsT::new(0.0, 1.0, ddf)
            .map(|d| d.inverse_cdf(0.975))
            .unwrap_or(f64::NAN)
    } else {
        1.959_963_984_540_054
    };
    Some(OrHillis {
        readers,
        cases,
        fom: modality_mean,
        fom_per_reader: [theta[0].clone(), theta[1].clone()],
        difference,
        ci95: (difference - t * se, difference + t * se),
        ms_t,
        ms_tr,
        var,
        cov1,
        cov2,
        cov3,
        f,
        ddf,
        p_value,
    })
}

/// Mean and sample SD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
}

fn mean_sd(values: &[f64]) -> MeanSd {
    let defined: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let n = defined.len() as f64;
    if defined.is_empty() {
        return MeanSd {
            mean: f64::NAN,
            sd: f64::NAN,
        };
    }
    let mean = defined.iter().sum::<f64>() / n;
    let sd = if defined.len() > 1 {
        (defined.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        f64::NAN
    };
    MeanSd { mean, sd }
}

/// Everything `hipfrac study report` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StudyReport {
    pub readers: Vec<String>,
    pub phases: Vec<String>,
    /// Cases read by every reader in every phase (the analysis set).
    pub cases: Vec<String>,
    /// `(reader, phase) → summary` (Table III per reader).
    pub per_reader: BTreeMap<(String, String), Summary>,
    /// Per phase, per class `[DF, VF, SF, UF, micro, macro]` mean ± SD of (Se, Sp) across
    /// readers (the paper's AVG columns).
    pub averages: BTreeMap<String, Vec<(MeanSd, MeanSd)>>,
    /// Per reader: McNemar of correctness, `(phase A, phase B) → test` (b: right in A only).
    pub mcnemar: BTreeMap<String, Vec<(String, String, McNemar)>>,
    /// Per phase: Cohen κ per reader pair, and Fleiss κ over all readers.
    pub cohen: BTreeMap<String, Vec<(String, String, Option<f64>)>>,
    pub fleiss: BTreeMap<String, Option<f64>>,
    /// Per reader: κ between the first two phases (intra-reader agreement after washout).
    pub intra: Vec<(String, Option<f64>)>,
    /// OR–Hillis, `(unaided phase, aided phase) → analysis`.
    pub mrmc: Vec<(String, String, Option<OrHillis>)>,
    /// Reads of cases missing from the truth, or duplicates, that were left out.
    pub warnings: Vec<String>,
}

/// Reads that cannot be analysed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StudyError {
    /// No reads at all.
    #[error("no reads")]
    NoReads,
    /// A phase named as aided that no read belongs to.
    #[error("aided phase {phase:?} has no reads (phases: {})", phases.join(", "))]
    UnknownAidedPhase {
        /// The phase named.
        phase: String,
        /// The phases the reads have, in order of first appearance.
        phases: Vec<String>,
    },
    /// No case was read by every reader in every phase.
    #[error("no case was read by every reader in every phase")]
    NoCompleteCase,
}

/// Analyses `reads` against `truth` (case → label). `aided` names the phase(s) read with the
/// AI; every other phase is compared with each of them (McNemar, OR–Hillis).
pub fn analyse(reads: &[Read], truth: &BTreeMap<String, Label>, aided: &[String]) -> Result<StudyReport, StudyError> {
    let mut warnings = Vec::new();
    let mut table: BTreeMap<(String, String, String), Label> = BTreeMap::new();
    for r in reads {
        if !truth.contains_key(&r.case) {
            warnings.push(format!(
                "case {:?} (reader {}, phase {}) is not in the truth: left out",
                r.case, r.reader, r.phase
            ));
            continue;
        }
        if table
            .insert((r.reader.clone(), r.phase.clone(), r.case.clone()), r.label)
            .is_some()
        {
            warnings.push(format!(
                "reader {} read case {:?} twice in phase {}: the last read counts",
                r.reader, r.case, r.phase
            ));
        }
    }
    let readers: Vec<String> = reads
        .iter()
        .map(|r| r.reader.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Phases in order of first appearance.
    let mut phases: Vec<String> = Vec::new();
    for r in reads {
        if !phases.contains(&r.phase) {
            phases.push(r.phase.clone());
        }
    }
    if readers.is_empty() || phases.is_empty() {
        return Err(StudyError::NoReads);
    }
    for a in aided {
        if !phases.contains(a) {
            return Err(StudyError::UnknownAidedPhase {
                phase: a.clone(),
                phases,
            });
        }
    }
    let cases: Vec<String> = truth
        .keys()
        .filter(|case| {
            readers.iter().all(|r| {
                phases
                    .iter()
                    .all(|p| table.contains_key(&(r.clone(), p.clone(), (*case).clone())))
            })
        })
        .cloned()
        .collect();
    let incomplete = truth.len() - cases.len();
    if incomplete > 0 {
        warnings.push(format!(
            "{incomplete} case(s) not read by every reader in every phase: left out of the analysis"
        ));
    }
    if cases.is_empty() {
        return Err(StudyError::NoCompleteCase);
    }
    let label =
        |reader: &str, phase: &str, case: &str| table[&(reader.to_string(), phase.to_string(), case.to_string())];
    let mut per_reader = BTreeMap::new();
    for r in &readers {
        for p in &phases {
            let outcomes: Vec<ImageOutcome> = cases
                .iter()
                .map(|c| ImageOutcome {
                    image: c.clone(),
                    patient: c.clone(),
                    truth: truth[c],
                    answer: label(r, p, c),
                    truth_boxes: Vec::new(),
                    predicted_boxes: Vec::new(),
                })
                .collect();
            per_reader.insert((r.clone(), p.clone()), summarize(&outcomes));
        }
    }
    let mut averages = BTreeMap::new();
    for p in &phases {
        let summaries: Vec<&Summary> = readers.iter().map(|r| &per_reader[&(r.clone(), p.clone())]).collect();
        let mut rows = Vec::new();
        for k in 0..4 {
            rows.push((
                mean_sd(
                    &summaries
                        .iter()
                        .map(|s| s.per_class[k].sensitivity.value)
                        .collect::<Vec<_>>(),
                ),
                mean_sd(
                    &summaries
                        .iter()
                        .map(|s| s.per_class[k].specificity.value)
                        .collect::<Vec<_>>(),
                ),
            ));
        }
        rows.push((
            mean_sd(&summaries.iter().map(|s| s.micro.sensitivity).collect::<Vec<_>>()),
            mean_sd(&summaries.iter().map(|s| s.micro.specificity).collect::<Vec<_>>()),
        ));
        rows.push((
            mean_sd(
                &summaries
                    .iter()
                    .map(|s| s.macro_average.sensitivity)
                    .collect::<Vec<_>>(),
            ),
            mean_sd(
                &summaries
                    .iter()
                    .map(|s| s.macro_average.specificity)
                    .collect::<Vec<_>>(),
            ),
        ));
        averages.insert(p.clone(), rows);
    }
    let right = |r: &str, p: &str, c: &str| label(r, p, c) == truth[c];
    let unaided: Vec<&String> = phases.iter().filter(|p| !aided.contains(p)).collect();
    let mut mcnemar_tests = BTreeMap::new();
    for r in &readers {
        let mut tests = Vec::new();
        for a in aided {
            for u in &unaided {
                let b = cases.iter().filter(|c| right(r, u, c) && !right(r, a, c)).count() as u64;
                let c_ = cases.iter().filter(|c| !right(r, u, c) && right(r, a, c)).count() as u64;
                tests.push(((*u).clone(), a.clone(), mcnemar(b, c_)));
            }
        }
        mcnemar_tests.insert(r.clone(), tests);
    }
    let mut cohen = BTreeMap::new();
    let mut fleiss = BTreeMap::new();
    for p in &phases {
        let mut pairs = Vec::new();
        for (i, a) in readers.iter().enumerate() {
            for b in &readers[i + 1..] {
                let la: Vec<Label> = cases.iter().map(|c| label(a, p, c)).collect();
                let lb: Vec<Label> = cases.iter().map(|c| label(b, p, c)).collect();
                pairs.push((a.clone(), b.clone(), cohen_kappa(&la, &lb)));
            }
        }
        cohen.insert(p.clone(), pairs);
        let items: Vec<Vec<Label>> = cases
            .iter()
            .map(|c| readers.iter().map(|r| label(r, p, c)).collect())
            .collect();
        fleiss.insert(p.clone(), fleiss_kappa(&items));
    }
    let intra = if unaided.len() >= 2 {
        readers
            .iter()
            .map(|r| {
                let a: Vec<Label> = cases.iter().map(|c| label(r, unaided[0], c)).collect();
                let b: Vec<Label> = cases.iter().map(|c| label(r, unaided[1], c)).collect();
                (r.clone(), cohen_kappa(&a, &b))
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut mrmc = Vec::new();
    for a in aided {
        for u in &unaided {
            let matrix = |p: &str| -> Vec<Vec<f64>> {
                readers
                    .iter()
                    .map(|r| cases.iter().map(|c| if right(r, p, c) { 1.0 } else { 0.0 }).collect())
                    .collect()
            };
            mrmc.push(((*u).clone(), a.clone(), or_hillis(&[matrix(u), matrix(a)])));
        }
    }
    Ok(StudyReport {
        readers,
        phases,
        cases,
        per_reader,
        averages,
        mcnemar: mcnemar_tests,
        cohen,
        fleiss,
        intra,
        mrmc,
        warnings,
    })
}
