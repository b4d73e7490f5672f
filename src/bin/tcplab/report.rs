//! `tcplab report DIR`: a past run's reports again, from its output folder (`report.json` and
//! the pcaps): the text report, or the JSON one, and the HTML page where asked.

use std::path::{Path, PathBuf};

use crate::CliError;
use tcplab::escape;

/// `tcplab report`: returns 0 when the run passed, 1 when it failed (as `tcplab run` did).
pub fn report(dir: &Path, json: bool, html: Option<PathBuf>) -> Result<u8, CliError> {
    let loaded = tcplab::report::load(dir).map_err(|e| CliError::setup(e.to_string()))?;
    let report = loaded.report;
    if let Some(path) = &html {
        // Printed, it is the folder's page: its pcaps are linked by name, as from report.html.
        let page_dir = if path.as_os_str() == "-" {
            dir
        } else {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
        };
        let page = report.html(&loaded.traces, Some(page_dir));
        if path.as_os_str() == "-" {
            print!("{page}");
        } else {
            tcplab::report::write_new(path, page.as_bytes())
                .map_err(|e| CliError::setup(e.to_string()))?;
        }
    }
    let passed = report.passed;
    if json {
        if html.as_deref() != Some(Path::new("-")) {
            println!("{}", report.json());
        }
    } else if html.as_deref() != Some(Path::new("-")) {
        print!("{}", crate::run::for_terminal(report).styled());
        if let Some(path) = &html {
            println!("HTML report: {}", escape::line(&path.display().to_string()));
        }
    }
    Ok(if passed { 0 } else { 1 })
}
