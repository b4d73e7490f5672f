//! `cargo xtask stress`: the catalog run many times at once, as a loaded CI machine runs it.
//! A benchmark, not a test: it counts how many runs of each scenario passed and shows the
//! first failing line of each failure, so a verdict that depends on load shows up as a count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const USAGE: &str = "usage: cargo xtask stress [catalog|one] [options]

  (no mode)   both below, with their defaults: the targets the README reports
  catalog     the whole catalog, K copies at once (each copy runs every scenario in turn,
              each starting at a different one), for R rounds
  one         N copies of one scenario at once, for R rounds

options:
  --wide K        copies of the catalog at once (catalog; default 4)
  --copies N      copies of the scenario at once (one; default 32)
  --scenario S    the scenario of `one` (default connect-timeout)
  --rounds R      rounds (default 5)
  --bin PATH      a tcplab binary to stress instead of this tree's release build (to compare
                  two versions)

Runs the release build of `tcplab run` as root. Output folders of failed runs are kept and
their paths printed; the others are removed.";

#[derive(Debug, Clone)]
struct Options {
    mode: Option<String>,
    wide: usize,
    copies: usize,
    scenario: String,
    rounds: usize,
    bin: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        mode: None,
        wide: 4,
        copies: 32,
        scenario: "connect-timeout".into(),
        rounds: 5,
        bin: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
                .cloned()
        };
        let count = |name: &str, v: String| -> Result<usize, String> {
            match v.parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{name} takes a whole number from 1 to 256, not `{v}`"
                )),
            }
        };
        match arg.as_str() {
            "catalog" | "one" if o.mode.is_none() => o.mode = Some(arg.clone()),
            "--wide" => o.wide = count("--wide", value("--wide")?)?,
            "--copies" => o.copies = count("--copies", value("--copies")?)?,
            "--rounds" => o.rounds = count("--rounds", value("--rounds")?)?,
            "--scenario" => o.scenario = value("--scenario")?,
            "--bin" => o.bin = Some(PathBuf::from(value("--bin")?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    Ok(o)
}

/// One run's result: the scenario, where, and the first failing line if it failed.
struct Outcome {
    scenario: String,
    label: String,
    failure: Option<String>,
    out: PathBuf,
}

/// Whether the arguments name their own binary (then nothing needs building).
pub fn brings_binary(args: &[String]) -> bool {
    parse(args).is_ok_and(|o| o.bin.is_some())
}

pub fn stress(root: &Path, built: &Path, args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let tcplab = o.bin.as_deref().unwrap_or(built);
    if !tcplab.is_file() {
        return Err(format!("no tcplab binary at {}", tcplab.display()));
    }
    let catalog = catalog(root)?;
    if !catalog.contains(&o.scenario) {
        return Err(format!(
            "no scenario `{}` in the catalog ({})",
            o.scenario,
            catalog.join(", ")
        ));
    }
    let scratch = std::env::temp_dir().join(format!("tcplab-stress-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("cannot create {scratch:?}: {e}"))?;
    let mut failed = 0;
    if o.mode.as_deref() != Some("one") {
        println!(
            "catalog: {} scenarios, {} copies at once, {} rounds",
            catalog.len(),
            o.wide,
            o.rounds
        );
        failed += report(rounds(o.rounds, |round| {
            catalog_round(root, tcplab, &scratch, &catalog, o.wide, round)
        }));
    }
    if o.mode.as_deref() != Some("catalog") {
        println!(
            "\n{}: {} copies at once, {} rounds",
            o.scenario, o.copies, o.rounds
        );
        failed += report(rounds(o.rounds, |round| {
            let jobs = (0..o.copies)
                .map(|c| vec![(o.scenario.clone(), format!("round {round}, copy {c}"))])
                .collect();
            run_all(root, tcplab, &scratch, jobs)
        }));
    }
    // Only failed runs' folders are left: say where, or remove the empty scratch folder.
    let _ = std::fs::remove_dir(&scratch);
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} run(s) failed"))
    }
}

fn rounds(n: usize, mut round: impl FnMut(usize) -> Vec<Outcome>) -> Vec<Outcome> {
    let started = Instant::now();
    let all: Vec<Outcome> = (1..=n).flat_map(&mut round).collect();
    println!(
        "  {} runs in {:.1} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    all
}

/// `wide` copies of the catalog at once; copy `c` starts at scenario `c * len / wide`, so
/// different scenarios overlap.
fn catalog_round(
    root: &Path,
    tcplab: &Path,
    scratch: &Path,
    catalog: &[String],
    wide: usize,
    round: usize,
) -> Vec<Outcome> {
    let jobs = (0..wide)
        .map(|c| {
            let offset = c * catalog.len() / wide;
            (0..catalog.len())
                .map(|i| {
                    let name = catalog[(offset + i) % catalog.len()].clone();
                    (name, format!("round {round}, copy {c}"))
                })
                .collect()
        })
        .collect();
    run_all(root, tcplab, scratch, jobs)
}

/// Runs each list of scenarios on its own thread, one after the other, all lists at once.
fn run_all(
    root: &Path,
    tcplab: &Path,
    scratch: &Path,
    jobs: Vec<Vec<(String, String)>>,
) -> Vec<Outcome> {
    let results = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = jobs
        .into_iter()
        .map(|list| {
            let (root, tcplab, scratch) = (root.to_owned(), tcplab.to_owned(), scratch.to_owned());
            let results = Arc::clone(&results);
            std::thread::spawn(move || {
                for (scenario, label) in list {
                    let outcome = run_one(&root, &tcplab, &scratch, scenario, label);
                    results.lock().expect("results lock").push(outcome);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    std::mem::take(&mut *results.lock().expect("results lock"))
}

fn run_one(root: &Path, tcplab: &Path, scratch: &Path, scenario: String, label: String) -> Outcome {
    let out = scratch.join(format!("{scenario}-{}", label.replace([' ', ','], "")));
    let result = Command::new(tcplab)
        .args(["run", &scenario, "--out"])
        .arg(&out)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .output();
    let failure = match result {
        Err(e) => Some(format!("cannot run {}: {e}", tcplab.display())),
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let stdout = String::from_utf8_lossy(&o.stdout);
            let stderr = String::from_utf8_lossy(&o.stderr);
            Some(
                stdout
                    .lines()
                    .find(|l| l.trim_start().starts_with("FAIL"))
                    .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
                    .map(|l| l.trim().to_string())
                    .unwrap_or_else(|| format!("exited with {} and printed nothing", o.status)),
            )
        }
    };
    if failure.is_none() {
        let _ = std::fs::remove_dir_all(&out);
    }
    Outcome {
        scenario,
        label,
        failure,
        out,
    }
}

/// Prints per scenario how many runs passed, and each failure's first failing line.
fn report(outcomes: Vec<Outcome>) -> usize {
    let mut by: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in &outcomes {
        by.entry(o.scenario.as_str()).or_default().push(o);
    }
    let width = by.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut failed = 0;
    for (scenario, runs) in &by {
        let bad: Vec<&&Outcome> = runs.iter().filter(|o| o.failure.is_some()).collect();
        println!(
            "  {scenario:<width$}  {:>3}/{:<3} passed",
            runs.len() - bad.len(),
            runs.len()
        );
        for o in bad {
            println!(
                "      {}: {}\n        (output kept in {})",
                o.label,
                o.failure.as_deref().unwrap_or_default(),
                o.out.display()
            );
        }
        failed += runs.iter().filter(|o| o.failure.is_some()).count();
    }
    println!("  total: {} of {} runs failed", failed, outcomes.len());
    failed
}

fn catalog(root: &Path) -> Result<Vec<String>, String> {
    let dir = root.join("fixtures/scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_the_targets() {
        let o = parse(&[]).unwrap();
        assert_eq!((o.wide, o.copies, o.rounds), (4, 32, 5));
        assert_eq!(o.scenario, "connect-timeout");
        assert!(o.mode.is_none());
    }

    #[test]
    fn bad_counts_are_refused() {
        assert!(parse(&args(&["--wide", "0"])).is_err());
        assert!(parse(&args(&["--rounds", "x"])).is_err());
        assert!(parse(&args(&["--copies"])).is_err());
        assert!(parse(&args(&["one", "catalog"])).is_err());
        let o = parse(&args(&["one", "--copies", "8", "--scenario", "allowed"])).unwrap();
        assert_eq!((o.mode.as_deref(), o.copies), (Some("one"), 8));
    }
}
