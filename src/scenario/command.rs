//! A step's command as the scenario file gives it, made ready to run: `${VAR}` taken from the
//! environment (so `${CARGO_BIN_EXE_mytool}` names a binary of the user's crate), and a
//! program path with a slash made relative to the scenario file, as `topology` is.

use std::path::Path;

/// Expands every `${NAME}` in `arg` from `lookup`; `$` followed by anything else is kept as
/// it is (a shell in the command may want it). The error names the missing or bad variable.
pub(super) fn expand(arg: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("`${{` without its `}}` in `{arg}`"));
        };
        let name = &after[..end];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`${{{name}}}` is not a variable name (letters, digits, _)"
            ));
        }
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(format!(
                    "`${{{name}}}` is not set in the environment (set it, or write the value)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A program named with a slash is a path: relative ones start from the scenario's folder.
/// A bare name is looked up as usual (tcplab's apps, then `PATH`).
pub(super) fn program(program: &str, dir: Option<&Path>) -> String {
    match dir {
        Some(dir) if program.contains('/') && !program.starts_with('/') => {
            dir.join(program).display().to_string()
        }
        _ => program.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "BIN" => Some("/target/debug/mytool".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn braced_variables_are_expanded_and_the_rest_kept() {
        assert_eq!(expand("${BIN}", env).unwrap(), "/target/debug/mytool");
        assert_eq!(expand("a${EMPTY}b", env).unwrap(), "ab");
        assert_eq!(
            expand("echo $HOME ${BIN}x", env).unwrap(),
            "echo $HOME /target/debug/mytoolx"
        );
        assert_eq!(expand("$", env).unwrap(), "$");
    }

    #[test]
    fn missing_and_bad_variables_are_refused_by_name() {
        assert!(
            expand("${NOPE}", env)
                .unwrap_err()
                .contains("`${NOPE}` is not set")
        );
        assert!(
            expand("${1X}", env)
                .unwrap_err()
                .contains("not a variable name")
        );
        assert!(expand("${BIN", env).unwrap_err().contains("without its"));
    }

    #[test]
    fn paths_with_a_slash_start_from_the_scenario() {
        let dir = Path::new("/work/tests");
        assert_eq!(program("./bin/tool", Some(dir)), "/work/tests/./bin/tool");
        assert_eq!(program("/usr/bin/curl", Some(dir)), "/usr/bin/curl");
        assert_eq!(program("curl", Some(dir)), "curl");
        assert_eq!(program("bin/tool", None), "bin/tool");
    }
}
