//! The command line: one definition, parsed once, each command run by the binary that owns it.

use clap::{CommandFactory, Parser};
use hipfrac_cli::args::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from([&["hipfrac"], args].concat())
}

#[test]
fn command_line_is_consistent() {
    Cli::command().debug_assert();
}

/// The CPU demo trains the two-stage detector unless told otherwise; `--full` is the paper's
/// configuration, single stage unless `--two-stage`; the split's shares are read.
#[test]
fn the_demo_defaults_to_two_stages_except_the_papers_configuration() {
    let demo = |args: &[&str]| match parse(&[&["demo"], args].concat()).unwrap().command {
        Command::Demo(args) => args,
        other => panic!("{other:?}"),
    };
    assert!(demo(&[]).trains_two_stage());
    assert!(!demo(&["--single-stage"]).trains_two_stage());
    assert!(!demo(&["--full"]).trains_two_stage());
    assert!(demo(&["--full", "--two-stage"]).trains_two_stage());
    assert_eq!(demo(&[]).ratios.to_string(), "80/10/10");
    assert_eq!(demo(&["--ratios", "0.7,0.1,0.2"]).ratios.0, [0.7, 0.1, 0.2]);
    for refused in [
        &["--ratios", "0.9,0.1,0"][..],
        &["--ratios", "0.5,0.5"],
        &["--single-stage", "--two-stage"],
    ] {
        assert!(parse(&[&["demo"], refused].concat()).is_err(), "{refused:?}");
    }
}

/// Which binary runs a command is read off the parsed command, never off the raw arguments.
#[test]
fn model_commands_are_told_apart_by_their_parsed_form() {
    let model = |args: &[&str]| parse(args).unwrap().command.runs_a_model();
    assert!(model(&["predict", "x.dcm", "--model", "m", "--out", "o"]));
    assert!(model(&["train", "--config", "c.toml"]));
    assert!(model(&["calibrate", "--model", "m", "--data", "v.csv"]));
    assert!(model(&["evaluate", "--model", "m", "--data", "t.csv", "--out", "o"]));
    assert!(model(&["demo"]));
    assert!(model(&["serve", "--model", "m", "--no-auth"]));
    assert!(model(&[
        "listen",
        "--model",
        "m",
        "--dest",
        "PACS@10.0.0.5:104",
        "--spool",
        "s"
    ]));
    assert!(model(&["study", "serve", "--study", "s.toml"]));
    assert!(!model(&["serve", "token", "list", "--tokens", "t"]));
    assert!(!model(&["study", "report", "r.csv", "--truth", "t.csv", "--out", "o"]));
    assert!(!model(&["phantom", "--count", "2", "--out", "o"]));
    assert!(!model(&["convert", "x.dcm", "--out", "o"]));
    assert!(!model(&["labels", "list"]));
    // An option named like a command is an option's value, not a command.
    assert!(!model(&["convert", "predict", "--out", "serve"]));
}

/// `serve` needs a model by its type: without --model it is a usage error, not a run-time one.
#[test]
fn the_service_requires_a_model_and_its_tokens_do_not() {
    let error = parse(&["serve", "--no-auth"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::MissingRequiredArgument, "{error}");
    assert!(error.to_string().contains("--model"), "{error}");
    match parse(&["serve", "--model", "m", "--no-auth"]).unwrap().command {
        Command::Serve(ServeArgs {
            run: Some(run),
            token: None,
        }) => assert_eq!(run.model, std::path::PathBuf::from("m")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["serve", "token", "add", "alice", "--tokens", "t"])
            .unwrap()
            .command,
        Command::Serve(ServeArgs {
            token: Some(ServeCommand::Token(TokenCommand::Add { .. })),
            run: None,
        })
    ));
    assert!(parse(&["serve"]).is_err(), "nothing to do");
}

/// What `hipfrac` parsed reaches `hipfrac-torch` whole: options, defaults and values parsed
/// into types (device, shard, precision, ratios) survive the hand-over.
#[test]
fn a_parsed_command_is_handed_over_whole() {
    for args in [
        &[
            "predict",
            "a",
            "b",
            "--model",
            "m",
            "--out",
            "o",
            "--shard",
            "1/4",
            "--precision",
            "bf16",
            "--device",
            "cuda:1",
            "--dicom",
            "sr,gsps",
            "--accept-body-part",
            "HUEFTE,BECKEN",
            "--site",
            "x",
        ][..],
        &["demo", "--ratios", "0.7,0.1,0.2", "--single-stage", "--device", "cpu"],
        &[
            "listen",
            "--model",
            "m",
            "--dest",
            "PACS@10.0.0.5:104",
            "--spool",
            "s",
            "--outputs",
            "sr",
        ],
        &["serve", "--model", "m", "--no-auth", "--max-batch", "4"],
        &[
            "calibrate",
            "--model",
            "m",
            "--data",
            "v.csv",
            "--out-of-scope",
            "h.csv",
            "--site",
            "b",
        ],
    ] {
        let parsed = parse(args).unwrap();
        let text = hipfrac_cli::hand_over(&parsed);
        let back: Cli = serde_json::from_str(&text).unwrap();
        assert_eq!(format!("{back:?}"), format!("{parsed:?}"), "{args:?}");
    }
}

#[test]
fn usage_names_hipfrac() {
    let error = Cli::command()
        .bin_name("hipfrac")
        .try_get_matches_from(["hipfrac-torch", "demo", "--help"])
        .unwrap_err();
    let help = error.to_string();
    assert!(help.contains("Usage: hipfrac demo"), "{help}");
    assert!(!help.contains("hipfrac-torch"), "{help}");
}

/// The file commands parse straight into hipfrac-files' options (their one definition, help
/// included): values, defaults, ranges and conflicts as when the command line had copies.
#[test]
fn file_commands_parse_into_the_libraries_options() {
    use hipfrac_files::{convert::Bits, deid::Retain, labels::Format};
    use std::path::PathBuf;
    let command = |args: &[&str]| parse(args).unwrap().command;
    match command(&[
        "convert", "a.dcm", "b", "--out", "o", "--bits", "16", "--window", "-50,400",
    ]) {
        Command::Convert(options) => {
            assert_eq!(options.inputs, [PathBuf::from("a.dcm"), PathBuf::from("b")]);
            assert_eq!((options.bits, options.window.as_str()), (Bits::Sixteen, "-50,400"));
            assert!(!options.no_sidecar && !options.overwrite && options.jobs.is_none());
        }
        other => panic!("{other:?}"),
    }
    match command(&["convert", "a", "--out", "o"]) {
        Command::Convert(options) => assert_eq!((options.bits, options.window.as_str()), (Bits::Eight, "file")),
        other => panic!("{other:?}"),
    }
    match command(&[
        "deid",
        "a",
        "--out",
        "o",
        "--key",
        "k",
        "--retain",
        "uids",
        "--retain",
        "full-dates",
    ]) {
        Command::Deid(options) => {
            assert_eq!(options.retain, [Retain::Uids, Retain::FullDates]);
            assert_eq!(options.key, PathBuf::from("k"));
        }
        other => panic!("{other:?}"),
    }
    match command(&["dataset", "split", "d", "--external-site", "C"]) {
        Command::Dataset(DatasetCommand::Split(options)) => {
            assert_eq!((options.ratios.as_str(), options.seed), ("0.8,0.1,0.1", 0));
            assert_eq!(options.external_site.as_deref(), Some("C"));
        }
        other => panic!("{other:?}"),
    }
    match command(&["dataset", "folds", "a.csv", "b.csv", "--out", "o"]) {
        Command::Dataset(DatasetCommand::Folds(options)) => assert_eq!((options.manifests.len(), options.k), (2, 5)),
        other => panic!("{other:?}"),
    }
    match command(&["labels", "convert", "--from", "yolo", "in", "--to", "coco", "out.json"]) {
        Command::Labels(LabelsCommand::Convert(options)) => {
            assert_eq!((options.from, options.to), (Format::Yolo, Format::Coco));
            assert_eq!(options.output, PathBuf::from("out.json"));
        }
        other => panic!("{other:?}"),
    }
    match command(&["phantom", "--count", "3", "--out", "o"]) {
        Command::Phantom(PhantomArgs { command: None, options }) => {
            assert_eq!(
                (options.count, options.site.as_str(), options.size),
                (Some(3), "site-a", 1024)
            );
        }
        other => panic!("{other:?}"),
    }
    match command(&["phantom", "sheet", "d", "--out", "s.png"]) {
        Command::Phantom(PhantomArgs {
            command: Some(PhantomCommand::Sheet(options)),
            ..
        }) => assert_eq!((options.count, options.columns, options.tile), (20, 5, 256)),
        other => panic!("{other:?}"),
    }
    match command(&["study", "report", "r.csv", "--truth", "t.csv", "--out", "o"]) {
        Command::Study(StudyCommand::Report(options)) => assert_eq!(options.aided, ["III"]),
        other => panic!("{other:?}"),
    }
    match command(&["merge-shards", "o", "--overwrite"]) {
        Command::MergeShards(options) => assert!(options.overwrite),
        other => panic!("{other:?}"),
    }
    for refused in [
        &["convert", "--out", "o"][..],
        &["convert", "a", "--out", "o", "--bits", "12"],
        &["convert", "a", "--out", "o", "--overwrite", "--skip-existing"],
        &["deid", "a", "--out", "o", "--key", "k", "--retain", "safe-private"],
        &["dataset", "folds", "a.csv", "--out", "o", "--k", "1"],
        &["dataset", "merge", "--out", "o"],
        &["labels", "convert", "--from", "voc", "in", "--to", "csv", "out"],
        &["phantom", "--overwrite", "--skip-existing"],
        &["phantom", "--count", "3", "sites"],
    ] {
        assert!(parse(refused).is_err(), "{refused:?}");
    }
}
