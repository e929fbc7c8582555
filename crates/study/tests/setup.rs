//! Starting a study: the study file's checks, the injected model (batches, errors) and the
//! typed errors.

mod support;

use hipfrac_core::{OperatingPoints, Prediction, Radiograph};
use hipfrac_study::{AiModel, App, ConfigProblem, StudyConfig, StudyError};
use support::*;

type Results = Vec<Result<Prediction, Box<dyn std::error::Error + Send + Sync>>>;

const AI_PHASES: &str = "[{ name = \"I\" }, { name = \"III\", ai = true }]";

#[test]
fn errors_can_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<StudyError>();
}

#[test]
fn an_ai_phase_without_a_model_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let config = StudyConfig::load(&write_study(temp.path(), 2, AI_PHASES)).unwrap();
    let error = App::new(config, None).err().expect("an AI phase needs a model");
    assert!(
        matches!(&error, StudyError::NoModel { study, phase } if study == STUDY_NAME && phase == "III"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(STUDY_NAME) && error.to_string().contains("\"III\""),
        "{error}"
    );
    // Without an AI phase no model is needed, and one given is not used.
    let config = StudyConfig::load(&write_study(temp.path(), 2, "[{ name = \"I\" }]")).unwrap();
    let points = OperatingPoints::uncalibrated();
    let mut calls = 0;
    let mut predict = |_: &[Radiograph]| -> Results {
        calls += 1;
        Vec::new()
    };
    let app = App::new(
        config,
        Some(AiModel {
            points: &points,
            predict: &mut predict,
        }),
    )
    .unwrap();
    assert!(app.cases.iter().all(|c| c.ai.is_none()));
    assert_eq!(calls, 0);
}

#[test]
fn cases_are_predicted_in_batches_in_order() {
    let temp = tempfile::tempdir().unwrap();
    let config = StudyConfig::load(&write_study(temp.path(), 19, AI_PHASES)).unwrap();
    let points = OperatingPoints::uncalibrated();
    let mut batches = Vec::new();
    let mut predict = |images: &[Radiograph]| -> Results {
        batches.push(images.iter().map(|i| i.width()).collect::<Vec<_>>());
        images.iter().map(|i| Ok(fixed_prediction(i))).collect()
    };
    let app = App::new(
        config,
        Some(AiModel {
            points: &points,
            predict: &mut predict,
        }),
    )
    .unwrap();
    // Case i is 10 + i pixels wide: every case once, in manifest order, at most 8 at a time.
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [8, 8, 3]);
    assert_eq!(batches.concat(), (10..29).collect::<Vec<u32>>());
    let overlay = app.cases[0].ai.as_ref().expect("an overlay for every case");
    assert_eq!(
        (overlay.headline.as_str(), overlay.detail.as_str(), overlay.kind),
        (
            "AI: likely fracture",
            "DF — displaced femoral-neck fracture, score 0.75",
            "likely"
        )
    );
    assert_eq!(
        overlay.marks,
        r#"[{"bbox":[11.0,2.0,17.0,6.0],"findings":[{"class":"DF","score":0.75}]}]"#
    );
    assert_eq!(overlay.mark_lines, ["DF 0.75"]);
    assert_eq!(
        overlay.boxes,
        r#"[{"bbox":[11.0,2.0,17.0,6.0],"class":"DF","score":0.75}]"#
    );
    assert_eq!(app.cases.len(), 19);
    assert!(app.cases.iter().all(|c| c.ai.is_some()));
}

#[test]
fn model_failures_stop_the_start_and_name_the_image() {
    let temp = tempfile::tempdir().unwrap();
    let study = write_study(temp.path(), 3, AI_PHASES);
    let points = OperatingPoints::uncalibrated();
    // One image fails: the error names it and keeps the model's error as its source.
    let mut predict = |images: &[Radiograph]| -> Results {
        images
            .iter()
            .enumerate()
            .map(|(k, i)| {
                if k == 1 {
                    Err("out of memory".into())
                } else {
                    Ok(fixed_prediction(i))
                }
            })
            .collect()
    };
    let error = App::new(
        StudyConfig::load(&study).unwrap(),
        Some(AiModel {
            points: &points,
            predict: &mut predict,
        }),
    )
    .err()
    .unwrap();
    assert!(
        matches!(&error, StudyError::Predict { path, .. } if path.ends_with("cases/case1.png")),
        "{error:?}"
    );
    assert!(
        !error.to_string().contains("out of memory"),
        "the source's text is not repeated: {error}"
    );
    assert_eq!(std::error::Error::source(&error).unwrap().to_string(), "out of memory");
    // A model that answers with too few predictions.
    let mut short = |_: &[Radiograph]| -> Results { Vec::new() };
    let error = App::new(
        StudyConfig::load(&study).unwrap(),
        Some(AiModel {
            points: &points,
            predict: &mut short,
        }),
    )
    .err()
    .unwrap();
    assert!(
        matches!(error, StudyError::PredictionCount { images: 3, returned: 0 }),
        "{error:?}"
    );
    // A missing case image is found before any prediction.
    std::fs::remove_file(temp.path().join("cases/case2.png")).unwrap();
    let mut never = |_: &[Radiograph]| -> Results { panic!("predicted with a case missing") };
    let error = App::new(
        StudyConfig::load(&study).unwrap(),
        Some(AiModel {
            points: &points,
            predict: &mut never,
        }),
    )
    .err()
    .unwrap();
    assert!(
        matches!(&error, StudyError::MissingImage { image, .. } if image.ends_with("cases/case2.png")),
        "{error:?}"
    );
}

#[test]
fn study_files_are_checked() {
    let temp = tempfile::tempdir().unwrap();
    let study = write_study(temp.path(), 2, "[{ name = \"I\" }]");
    let text = std::fs::read_to_string(&study).unwrap();
    let config = StudyConfig::load(&study).unwrap();
    assert_eq!(
        config.cases,
        temp.path().join("cases/manifest.csv"),
        "relative to the study file"
    );
    assert_eq!(config.model.as_deref(), Some(temp.path().join("model").as_path()));

    let missing = temp.path().join("nowhere.toml");
    let error = StudyConfig::load(&missing).unwrap_err();
    assert!(
        matches!(&error, StudyError::ReadConfig { path, .. } if path == &missing),
        "{error:?}"
    );
    assert!(error.to_string().contains("nowhere.toml"));

    type Check = fn(&StudyError) -> bool;
    let cases: [(&str, String, Check); 6] = [
        ("typo", text.replace("seed = 3", "sed = 3"), |e| {
            matches!(e, StudyError::ParseConfig { .. })
        }),
        (
            "twice",
            text.replace("name = \"bob\"", "name = \"alice\""),
            |e| matches!(e, StudyError::InvalidConfig { problem: ConfigProblem::DuplicateName(n), .. } if n == "alice"),
        ),
        (
            "plain",
            text.replacen("password_hash = \"$argon2", "password_hash = \"plain$argon2", 1),
            |e| matches!(e, StudyError::InvalidConfig { problem: ConfigProblem::NotArgon2Hash(n), .. } if n == "alice"),
        ),
        (
            "negative",
            text.replace(
                "{ name = \"I\" }",
                "{ name = \"I\" }, { name = \"II\", washout_days = -1 }",
            ),
            |e| matches!(e, StudyError::InvalidConfig { problem: ConfigProblem::NegativeWashout(p), .. } if p == "II"),
        ),
        (
            "endless",
            text.replace(
                "{ name = \"I\" }",
                "{ name = \"I\" }, { name = \"II\", washout_days = inf }",
            ),
            |e| matches!(e, StudyError::InvalidConfig { problem: ConfigProblem::NegativeWashout(p), .. } if p == "II"),
        ),
        (
            "nomodel",
            text.replace("model = \"model\"\n", "")
                .replace("{ name = \"I\" }", "{ name = \"I\", ai = true }"),
            |e| {
                matches!(
                    e,
                    StudyError::InvalidConfig {
                        problem: ConfigProblem::AiWithoutModel,
                        ..
                    }
                )
            },
        ),
    ];
    for (name, text, expected) in cases {
        let path = temp.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let error = StudyConfig::load(&path).unwrap_err();
        assert!(expected(&error), "{name}: {error:?}");
        assert!(error.to_string().contains(&format!("{name}.toml")), "{name}: {error}");
    }
    // Cases and database paths of a study whose case list is empty.
    std::fs::write(
        temp.path().join("cases/manifest.csv"),
        "image,annotation,patient,site,label\n",
    )
    .unwrap();
    let error = App::new(StudyConfig::load(&study).unwrap(), None).err().unwrap();
    assert!(
        matches!(&error, StudyError::NoCases { path } if path.ends_with("cases/manifest.csv")),
        "{error:?}"
    );
}
