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
