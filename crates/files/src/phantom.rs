//! `hipfrac phantom`, `phantom sheet` and `phantom sites`.

use crate::{progress, Outcome};
use anyhow::{bail, Context, Result};
use clap::Args;
use hipfrac_phantom::acquisition::{SiteProfile, BUILT_IN};
use hipfrac_phantom::output::{generate, GenerateOptions};
use hipfrac_phantom::sheet::{contact_sheet, tiles_from_manifest, Tile};
use hipfrac_phantom::ClassMix;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `hipfrac phantom` is asked to simulate.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct PhantomOptions {
    /// Number of images.
    #[arg(long)]
    pub count: Option<usize>,
    /// Acquisition site: a built-in name (site-a, site-b internal; site-c external) or a
    /// site profile .toml file.
    #[arg(long, default_value = "site-a")]
    pub site: String,
    /// Random seed: the same seed writes byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Longer image side in pixels.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Output folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Class mix, e.g. `DF=1410,VF=720,SF=1044,UF=984,none=335` (the paper's, the default).
    #[arg(long)]
    pub mix: Option<String>,
    /// Replace an earlier run in the same folder.
    #[arg(long, conflicts_with = "skip_existing")]
    pub overwrite: bool,
    /// Leave an earlier run of the same size in --out alone (exit 0); one of another size is
    /// an error.
    #[arg(long)]
    pub skip_existing: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Simulator: v1 (the default: analytic shapes, parallel beam) or v2 (3D anatomy as
    /// signed-distance fields, point source with magnification, polychromatic beam; all four
    /// fracture types as 3D events, the same default mix as v1; see docs/phantom.md).
    #[arg(long, value_enum, default_value_t = Generator::V1)]
    #[serde(default)]
    pub generator: Generator,
}

/// Which phantom simulator writes the images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// Today's phantom: byte-identical per seed to earlier runs.
    #[default]
    V1,
    /// Phantom v2 (issue 27): projected from 3D anatomy with X-ray physics.
    V2,
}

/// What `hipfrac phantom sheet` is asked to draw.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct SheetOptions {
    /// A folder written by `hipfrac phantom` (or any dataset with manifest.csv).
    pub dir: PathBuf,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of thumbnails (spread over the classes).
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Thumbnails per row.
    #[arg(long, default_value_t = 5)]
    pub columns: usize,
    /// Thumbnail size in pixels.
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// Real radiographs (DICOM, PNG or JPEG) to show first, for comparison (repeat the option
    /// for several).
    #[arg(long)]
    pub compare: Vec<PathBuf>,
}

/// Lists the built-in site profiles on stdout.
pub fn sites() -> Result<Outcome> {
    for (name, _) in BUILT_IN {
        let site = SiteProfile::load(name)?;
        println!(
            "{name}: {} — {} {}, {} bits, {}, field {}×{} mm",
            site.institution,
            site.manufacturer,
            site.model,
            site.bits_stored,
            site.photometric,
            site.field_mm[0],
            site.field_mm[1]
        );
    }
    Ok(Outcome::Success)
}

/// Simulates the radiographs into `out` (DICOM, PNG + VOC, manifest).
pub fn run(args: PhantomOptions) -> Result<Outcome> {
    let count = args.count.context("--count is required (number of images)")?;
    let out = args.out.context("--out is required (output folder)")?;
    if count == 0 {
        bail!("--count must be at least 1");
    }
    if !(64..=4096).contains(&args.size) {
        bail!("--size {} must be between 64 and 4096 pixels", args.size);
    }
    let manifest = out.join("manifest.csv");
    let settings = RunSettings {
        count,
        site: args.site.clone(),
        seed: args.seed,
        size: args.size,
        mix: args.mix.clone().unwrap_or_default(),
        generator: args.generator,
    };
    let settings_path = out.join(RunSettings::FILE);
    if args.skip_existing && manifest.exists() {
        let earlier = hipfrac_data::manifest::read(&manifest)?.len();
        if earlier != count {
            bail!(
                "{}: an earlier run of {earlier} images, not {count}; pass --overwrite to replace it",
                manifest.display()
            );
        }
        // A run that recorded its settings must have had these (older runs only their count).
        if settings_path.exists() {
            let text =
                std::fs::read(&settings_path).with_context(|| format!("cannot read {}", settings_path.display()))?;
            let before: RunSettings = serde_json::from_slice(&text)
                .with_context(|| format!("{}: not a phantom run's settings", settings_path.display()))?;
            let differ = before.differences(&settings);
            if !differ.is_empty() {
                bail!(
                    "{}: an earlier run with another {}; pass --overwrite to replace it",
                    out.display(),
                    differ.join(", ")
                );
            }
        }
        eprintln!("{} holds an earlier run of {count} images with these settings; left alone (already there: {count}, simulated: 0)", out.display());
        return Ok(Outcome::Success);
    }
    if args.skip_existing && out.join("images").exists() && !args.overwrite {
        bail!(
            "{}: an unfinished earlier run (images but no manifest.csv); pass --overwrite to simulate it again",
            out.display()
        );
    }
    let site = SiteProfile::load(&args.site)?;
    let mix: ClassMix = match (&args.mix, args.generator) {
        (Some(text), _) => text.parse()?,
        (None, Generator::V1) => ClassMix::default(),
        (None, Generator::V2) => hipfrac_phantom::v2::default_mix(),
    };
    let options = GenerateOptions {
        count,
        site,
        seed: args.seed,
        size: args.size,
        out: out.clone(),
        mix,
        overwrite: args.overwrite,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start worker threads")?;
    let bar = progress::bar(count as u64, "simulating");
    let started = std::time::Instant::now();
    let rows = match args.generator {
        Generator::V1 => pool.install(|| generate(&options, || bar.inc(1)))?,
        Generator::V2 => pool.install(|| hipfrac_phantom::v2::generate(&options, || bar.inc(1)))?,
    };
    bar.finish_and_clear();
    let json = serde_json::to_vec_pretty(&settings).context("the run's settings serialise")?;
    hipfrac_dicom::atomic::write_atomic(&settings_path, &json)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut counts = [0usize; 5];
    for row in &rows {
        counts[row.label.index()] += 1;
    }
    eprintln!(
        "simulated {} images ({}) of site {} in {seconds:.1} s ({:.2} images/s) → {}\n  DF {} · VF {} · SF {} · UF {} · none {}\n  phantom images: for testing the pipeline, not clinical evidence",
        rows.len(),
        format!("{:?}", args.generator).to_lowercase(),
        options.site.name,
        rows.len() as f64 / seconds,
        out.display(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4]
    );
    Ok(Outcome::Success)
}

/// What a phantom run was asked for (`phantom.json` beside its manifest), so `--skip-existing`
/// leaves alone only a run of the same images.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct RunSettings {
    count: usize,
    site: String,
    seed: u64,
    size: usize,
    /// `--mix` as given (empty: the default mix).
    mix: String,
    /// Runs recorded before v2 existed were v1's; a v1 run writes no such field, so its
    /// phantom.json keeps the bytes it always had.
    #[serde(default, skip_serializing_if = "Generator::is_v1")]
    generator: Generator,
}

impl From<Generator> for hipfrac_phantom::demo_set::Generator {
    fn from(generator: Generator) -> Self {
        match generator {
            Generator::V1 => hipfrac_phantom::demo_set::Generator::V1,
            Generator::V2 => hipfrac_phantom::demo_set::Generator::V2,
        }
    }
}

impl Generator {
    fn is_v1(&self) -> bool {
        *self == Generator::V1
    }
}

impl RunSettings {
    const FILE: &'static str = "phantom.json";

    /// The names of the settings that differ, as `--flag (was → now)`.
    fn differences(&self, now: &RunSettings) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |flag: &str, was: String, is: String| {
            if was != is {
                out.push(format!("--{flag} ({was} → {is})"));
            }
        };
        check("count", self.count.to_string(), now.count.to_string());
        check("site", self.site.clone(), now.site.clone());
        check("seed", self.seed.to_string(), now.seed.to_string());
        check("size", self.size.to_string(), now.size.to_string());
        check("mix", self.mix.clone(), now.mix.clone());
        check(
            "generator",
            format!("{:?}", self.generator).to_lowercase(),
            format!("{:?}", now.generator).to_lowercase(),
        );
        out
    }
}

/// Draws a contact sheet of a phantom (or any manifest's) folder.
pub fn sheet(args: SheetOptions) -> Result<Outcome> {
    let mut tiles = Vec::new();
    tiles.extend(args.compare.iter().map(|real| Tile {
        image: real.clone(),
        annotation: None,
        caption: "REAL (NO LABEL)".into(),
    }));
    let wanted = args.count.saturating_sub(tiles.len());
    tiles.extend(tiles_from_manifest(&args.dir, wanted)?);
    if tiles.is_empty() {
        bail!("{}: no images in manifest.csv", args.dir.display());
    }
    let canvas = contact_sheet(
        &tiles,
        args.columns.max(1),
        args.tile.clamp(64, 1024),
        "PHANTOM - SIMULATED, NOT PATIENTS",
    )?;
    canvas.write_png(&args.out)?;
    eprintln!("wrote {} ({} thumbnails)", args.out.display(), tiles.len());
    Ok(Outcome::Success)
}
