//! Finding scenarios: a file path, or a name in the catalog.

use std::path::{Path, PathBuf};

use crate::CliError;
use tcplab::escape;
use tcplab::scenario::Scenario;

/// The catalog's folder: $TCPLAB_CATALOG, ./fixtures/scenarios, or the source tree's.
pub fn dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("TCPLAB_CATALOG").map(PathBuf::from),
        Some(PathBuf::from("fixtures/scenarios")),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/scenarios"
        ))),
    ];
    candidates.into_iter().flatten().find(|d| d.is_dir())
}

fn names(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// The scenario a user named.
pub fn find(arg: &str) -> Result<PathBuf, CliError> {
    let path = Path::new(arg);
    // Anything there but a folder (a FIFO, a device...) is the user's file: reading it
    // refuses it with the reason, instead of pretending it does not exist.
    if path.metadata().is_ok_and(|m| !m.is_dir()) {
        return Ok(path.to_path_buf());
    }
    let Some(dir) = dir() else {
        return Err(CliError::setup(format!(
            "`{arg}` is not a file, and the scenario catalog was not found (set TCPLAB_CATALOG to its folder)"
        )));
    };
    let file = dir.join(format!("{}.toml", arg.trim_end_matches(".toml")));
    if file.is_file() {
        return Ok(file);
    }
    let known: Vec<String> = names(&dir)
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    Err(CliError::setup(format!(
        "no scenario file `{arg}` and no scenario of that name in the catalog (known: {})",
        known.join(", ")
    )))
}

pub fn list() -> Result<u8, CliError> {
    let dir = dir().ok_or_else(|| {
        CliError::setup("the scenario catalog was not found (set TCPLAB_CATALOG to its folder)")
    })?;
    let bold = anstyle::Style::new().bold();
    // A bad file is one line among the others: the rest of the catalog still shows, and the
    // exit code (1) tells a script that something is wrong.
    let mut invalid = false;
    for file in names(&dir) {
        match Scenario::from_file(&file) {
            Ok(s) => println!(
                "{bold}{:<28}{bold:#} {}",
                escape::line(&s.name),
                escape::line(&s.description)
            ),
            Err(e) => {
                invalid = true;
                println!(
                    "{:<28} (invalid: {})",
                    escape::line(&file.display().to_string()),
                    escape::line(&e.to_string())
                )
            }
        }
    }
    Ok(u8::from(invalid))
}
