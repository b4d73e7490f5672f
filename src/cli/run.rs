//! `tcplab run`: a scenario with a live view, then the report.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{CliError, catalog};
use crate::escape;
use crate::report::Report;
use crate::scenario::{Event, RunOptions, Scenario};

pub fn run(arg: &str, out: Option<PathBuf>, json: bool) -> Result<u8, CliError> {
    let path = catalog::find(arg)?;
    let scenario = Scenario::from_file(&path).map_err(|e| CliError::setup(e.to_string()))?;
    crate::lab::check_privileges().map_err(|e| CliError::setup(e.to_string()))?;
    let out = match out {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix(&format!("tcplab-{}-", scenario.name))
            .tempdir()
            .map_err(|e| CliError::setup(format!("cannot create a temporary folder: {e}")))?
            .keep(),
    };
    let (tx, rx) = mpsc::channel();
    let options = RunOptions {
        out_dir: Some(out.clone()),
        bin_dir: None,
        events: (!json).then_some(tx),
    };
    let worker = {
        let scenario = scenario.clone();
        std::thread::spawn(move || crate::scenario::run(&scenario, options))
    };
    if !json {
        live_view(&scenario, rx);
    }
    let run = worker
        .join()
        .map_err(|_| CliError::setup("the scenario's run panicked (a tcplab bug)"))?
        .map_err(|e| CliError::setup(e.to_string()))?;
    let report = Report::new(&scenario, &run);
    let passed = report.passed;
    if json {
        println!("{}", report.json());
    } else {
        anstream::print!("\n{}", for_terminal(report).styled());
        anstream::println!("pcaps: {}", escape::line(&out.display().to_string()));
    }
    Ok(if passed { 0 } else { 1 })
}

/// Steps and packets as they happen, with a bar toward the current step's timeout. Ends when
/// the run drops its sender.
fn live_view(scenario: &Scenario, rx: mpsc::Receiver<Event>) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    // Without a terminal there is no bar; the lines still go out, as plain output.
    let say = |line: String| {
        // Steps quote the file (commands, lines waited for): no raw control characters.
        let line = escape::line(&line);
        if bar.is_hidden() {
            anstream::println!("{line}");
        } else {
            bar.println(line);
        }
    };
    say(format!(
        "running {} ({} steps, time limit {} s)",
        scenario.name,
        scenario.steps.len(),
        scenario.time_limit.as_secs_f64()
    ));
    bar.set_style(
        ProgressStyle::with_template("  {spinner} {msg} [{bar:30}] {elapsed_precise}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut step_started = Instant::now();
    let mut step_limit = Duration::ZERO;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Step {
                index,
                total,
                description,
                limit,
                connect_timeout,
            }) => {
                step_started = Instant::now();
                step_limit = connect_timeout.unwrap_or(limit);
                say(format!("step {}/{total}: {description}", index + 1));
                bar.set_length(step_limit.as_millis() as u64);
                bar.set_position(0);
                bar.set_message(match connect_timeout {
                    Some(t) => format!("connect timeout {:.1} s", t.as_secs_f64()),
                    None => "step".to_string(),
                });
            }
            Ok(Event::Packet { host, at, line }) => {
                say(format!("  {:>9.6} {host:<15} {line}", at.as_secs_f64()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let done = step_started.elapsed().min(step_limit);
        bar.set_position(done.as_millis() as u64);
    }
    bar.finish_and_clear();
}

/// The report with every text that comes from the scenario file or a program escaped, so that
/// none can send control sequences to the terminal (the JSON report keeps them as they were).
fn for_terminal(mut report: Report) -> Report {
    let esc = |s: &mut String| *s = escape::text(s).into_owned();
    esc(&mut report.scenario);
    esc(&mut report.description);
    for c in &mut report.expectations {
        esc(&mut c.expectation);
        esc(&mut c.detail);
    }
    for c in &mut report.captures {
        c.lines.iter_mut().for_each(esc);
        c.pcap.iter_mut().for_each(esc);
    }
    for p in &mut report.programs {
        esc(&mut p.name);
        esc(&mut p.command);
        for l in &mut p.output {
            esc(&mut l.text);
        }
    }
    report
}
