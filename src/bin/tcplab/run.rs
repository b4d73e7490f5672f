//! `tcplab run`: a scenario with a live view, then the report. Ctrl+C or SIGTERM stops the
//! run's programs and ends it early, still with the captures so far and a report.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{CliError, catalog};
use tcplab::escape;
use tcplab::output::OutDir;
use tcplab::report::Report;
use tcplab::scenario::{Event, Interrupt, RunOptions, Scenario, signal_name};

/// How long the programs of an interrupted run get to end on SIGINT before they are killed.
const GRACE: Duration = Duration::from_secs(2);

/// Where a run's pcaps go, and whether tcplab made the folder for this run only.
struct Output {
    path: PathBuf,
    temporary: bool,
}

impl Output {
    fn new(out: Option<PathBuf>, name: &str) -> Result<Output, CliError> {
        match out {
            Some(path) => {
                // Checked (a real folder, empty) and made now, before a lab is built.
                OutDir::open(&path).map_err(|e| CliError::setup(e.to_string()))?;
                Ok(Output {
                    path,
                    temporary: false,
                })
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix(&format!("tcplab-{name}-"))
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir()
                    .map_err(|e| {
                        CliError::setup(format!("cannot create a temporary folder: {e}"))
                    })?;
                Ok(Output {
                    path: dir.keep(),
                    temporary: true,
                })
            }
        }
    }

    /// Removes the folder if tcplab made it for this run only.
    fn discard(&self) -> bool {
        self.temporary && std::fs::remove_dir_all(&self.path).is_ok()
    }
}

/// `tcplab run`: returns the exit code (0 passed, 1 failed, 130/143 interrupted).
pub fn run(
    arg: &str,
    out: Option<PathBuf>,
    html: Option<PathBuf>,
    json: bool,
    keep: bool,
    trace_rules: bool,
) -> Result<u8, CliError> {
    let path = catalog::find(arg)?;
    let scenario = Scenario::from_file(&path).map_err(|e| CliError::setup(e.to_string()))?;
    tcplab::lab::check_privileges().map_err(|e| CliError::setup(e.to_string()))?;
    // Checked now, not after the run: the page is created new (never over a file) at the end.
    if let Some(path) = &html
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(CliError::setup(format!(
            "{} already exists: give --html a new file (tcplab never writes over a file it did not create)",
            path.display()
        )));
    }
    let interrupt = Interrupt::new();
    let output = Output::new(out, &scenario.name)?;
    if let Err(e) = watch_signals(interrupt.clone(), output.path.clone()) {
        output.discard();
        return Err(e);
    }
    let (tx, rx) = mpsc::channel();
    let options = RunOptions {
        out_dir: Some(output.path.clone()),
        bin_dir: None,
        events: (!json).then_some(tx),
        interrupt: Some(interrupt.clone()),
        lab: tcplab::lab::LabOptions { trace_rules },
    };
    let worker = {
        let scenario = scenario.clone();
        std::thread::spawn(move || tcplab::scenario::run(&scenario, options))
    };
    if !json {
        live_view(&scenario, rx);
    }
    let run = match worker.join() {
        Ok(Ok(run)) => run,
        Ok(Err(e)) => {
            output.discard();
            return Err(CliError::setup(e.to_string()));
        }
        Err(_) => {
            return Err(CliError::setup(
                "the scenario's run panicked (a tcplab bug)",
            ));
        }
    };
    let report = Report::new(&scenario, &run);
    // The reports are written before the folder's fate is decided: `report.json` is what
    // `tcplab report` reads back, and the page goes where --html says, or beside the pcaps.
    let saved = report
        .save(&run.traces, &output.path, html.as_deref())
        .map_err(|e| CliError::setup(format!("cannot write the report: {e}")));
    let signal = interrupt.signal();
    let passed = report.passed;
    let kept = keep || !passed || signal.is_some() || saved.is_err() || !output.discard();
    let saved = saved?;
    if json {
        println!("{}", report.json());
    } else {
        print!("\n{}", for_terminal(report).styled());
        if let Some(signal) = signal {
            println!(
                "interrupted by {}: the report and the pcaps cover the run until then",
                signal_name(signal)
            );
        }
        if kept {
            println!(
                "pcaps: {}",
                escape::line(&output.path.display().to_string())
            );
        } else {
            println!(
                "pcaps: removed with their temporary folder, as the run passed (keep them with --keep or --out DIR)"
            );
        }
        if kept || html.is_some() {
            println!(
                "HTML report: {}",
                escape::line(&saved.html.display().to_string())
            );
        }
    }
    Ok(match signal {
        // As a shell reports a program ended by the signal: 130 for SIGINT, 143 for SIGTERM.
        Some(signal) => 128 + signal as u8,
        None if passed => 0,
        None => 1,
    })
}

/// Turns SIGINT and SIGTERM into an interrupted run: the first stops the programs (SIGINT),
/// which are killed after [`GRACE`] or at a second signal; a third ends tcplab at once. Returns
/// once the handlers are in place.
fn watch_signals(interrupt: Interrupt, pcaps: PathBuf) -> Result<(), CliError> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (mut int, mut term) = match (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) {
                    (Ok(i), Ok(t)) => (i, t),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let next =
                    async |int: &mut tokio::signal::unix::Signal,
                           term: &mut tokio::signal::unix::Signal| {
                        tokio::select! {
                            _ = int.recv() => libc::SIGINT,
                            _ = term.recv() => libc::SIGTERM,
                        }
                    };
                let first = next(&mut int, &mut term).await;
                anstream::eprintln!(
                    "\ninterrupted by {}: stopping the programs, keeping what was captured",
                    signal_name(first)
                );
                interrupt.interrupt(first);
                tokio::select! {
                    _ = next(&mut int, &mut term) => {}
                    _ = tokio::time::sleep(GRACE) => {}
                }
                interrupt.kill_programs();
                next(&mut int, &mut term).await;
                anstream::eprintln!(
                    "error: interrupted again: ending without a report (the pcaps so far are in {})",
                    pcaps.display()
                );
                std::process::exit(128 + first);
            });
        });
    if let Err(e) = spawned {
        return Err(CliError::setup(format!("cannot watch for Ctrl+C: {e}")));
    }
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CliError::setup(format!("cannot watch for Ctrl+C: {e}"))),
        Err(_) => Err(CliError::setup("cannot watch for Ctrl+C")),
    }
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
            println!("{line}");
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
pub(crate) fn for_terminal(mut report: Report) -> Report {
    let esc = |s: &mut String| *s = escape::text(s).into_owned();
    esc(&mut report.scenario);
    esc(&mut report.description);
    for c in &mut report.expectations {
        esc(&mut c.expectation);
        esc(&mut c.detail);
        c.at.iter_mut().for_each(esc);
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
        p.class.iter_mut().for_each(esc);
    }
    report.rules.flows.iter_mut().for_each(esc);
    report.rules.lost.iter_mut().for_each(esc);
    for c in &mut report.captures {
        esc(&mut c.host);
        esc(&mut c.interface);
    }
    for l in &mut report.ladders {
        esc(&mut l.title);
        l.columns.iter_mut().for_each(esc);
        for a in &mut l.arrows {
            esc(&mut a.label);
            esc(&mut a.info);
            a.stopped.iter_mut().for_each(esc);
        }
    }
    report
}
