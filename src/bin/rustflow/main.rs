//! `rustflow`: runs, inspects, benchmarks and serves TensorFlow models.
//!
//! ```text
//! rustflow run   MODEL --input NAME=FILE.npy ... [--output NAME ...] [--signature KEY] [--outdir DIR]
//! rustflow show  MODEL [--tag-set serve] [--signature_def KEY] [--all] [--json]
//! rustflow bench MODEL [--input NAME=SHAPE|FILE.npy ...] [--runs N] [--warmup N] [--threads N] [--batch N] [--json]
//! rustflow serve MODEL [--name NAME] [--host 127.0.0.1] [--port 8501] [--grpc-port 8500] [--threads N]
//! ```
//!
//! MODEL is a SavedModel directory (tag `serve`) or a GraphDef file (`.pb`, or text
//! `.pbtxt`); `serve` also takes a base path of numeric version folders. Errors are one line
//! on stderr and a non-zero exit status (2 for a usage error, 1 otherwise).

mod bench;
mod run;
mod serve;
mod show;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Runs, inspects, benchmarks and serves TensorFlow models (SavedModels and GraphDefs)
/// without Python or libtensorflow.
#[derive(Parser, Debug)]
#[command(name = "rustflow", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Run(run::Args),
    Show(show::Args),
    Bench(bench::Args),
    Serve(serve::Args),
}

/// A failure: a usage error (exit status 2) or a run error (exit status 1).
#[derive(Debug)]
pub enum Failure {
    /// The command line is wrong.
    Usage(String),
    /// The command failed.
    Run(String),
}

/// Wraps an error as a run failure.
pub fn run_err(e: impl std::fmt::Display) -> Failure {
    Failure::Run(e.to_string())
}

/// Parses a memory size: bytes, or a number with a binary unit (`512K`, `2G`, `1.5GiB`;
/// K, M, G and T are powers of 1024, with or without `iB`/`B`, in either case).
pub fn parse_bytes(v: &str) -> Result<usize, String> {
    let t = v.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "wants a size such as 2G, 512M or 1000000, got '{v}'"
            ))
        }
    };
    let bytes = number
        .parse::<f64>()
        .ok()
        .map(|n| n * (1u64 << shift) as f64)
        .filter(|b| b.is_finite() && *b >= 1.0 && *b < usize::MAX as f64)
        .ok_or_else(|| format!("wants a positive size such as 2G, 512M or 1000000, got '{v}'"))?;
    Ok(bytes as usize)
}

/// clap's error as one line: its message, then the usage it prints.
fn one_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut message = Vec::new();
    let mut usage = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
        } else if !line.starts_with("For more information") && !line.starts_with("tip:") {
            message.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    let mut s = message.join(" ");
    if let Some(u) = usage {
        s.push_str(&format!(" (usage: {u}; see --help)"));
    }
    s
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rustflow: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run(a) => run::run(&a),
        Command::Show(a) => show::show(&a),
        Command::Bench(a) => bench::bench(&a),
        Command::Serve(a) => serve::serve(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("rustflow: {}", msg.replace('\n', " "));
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            // One line: messages that span lines are joined.
            eprintln!("rustflow: error: {}", msg.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn memory_sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("4 KB"), Ok(4096));
        for bad in ["", "G", "0", "-1G", "2X", "1e400"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clap_errors_become_one_line() {
        let e = Cli::try_parse_from(["rustflow", "run"]).unwrap_err();
        let s = one_line(&e);
        assert!(!s.contains('\n'), "{s}");
        assert!(
            s.contains("<MODEL>") && s.contains("usage: rustflow run"),
            "{s}"
        );
    }
}
