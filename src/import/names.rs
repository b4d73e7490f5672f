//! tcplab names for imported resources: a cloud's names and ids become names valid as host
//! names (1 to 15 lowercase letters, digits and dashes, starting with a letter), unique among
//! their kind.

use std::collections::HashSet;

use crate::spec::{BRIDGE, FABRIC, MAX_HOST_NAME};

/// The names given so far to one kind of resource (hosts, subnets, groups...).
#[derive(Debug, Default)]
pub(crate) struct Names {
    taken: HashSet<String>,
}

impl Names {
    /// A new name from `preferred` (a Name tag, say), else from `id`, else `prefix`: sanitised,
    /// and given a `-2`, `-3`... suffix when another resource of the kind has it already.
    /// `prefix` also starts a name whose text starts with a digit.
    pub(crate) fn claim(&mut self, preferred: Option<&str>, id: &str, prefix: &str) -> String {
        let base = preferred
            .map(|p| sanitise(p, prefix))
            .filter(|s| !s.is_empty())
            .or_else(|| Some(sanitise(id, prefix)).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| sanitise(prefix, "x"));
        let base = if base.is_empty() { "x".into() } else { base };
        let mut name = base.clone();
        let mut n = 2u64;
        while self.is_taken(&name) {
            let suffix = format!("-{n}");
            let mut stem = base.clone();
            stem.truncate(MAX_HOST_NAME - suffix.len());
            let stem = stem.trim_end_matches('-');
            name = format!("{stem}{suffix}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    fn is_taken(&self, name: &str) -> bool {
        // tcplab's own names, which no host or subnet may take.
        self.taken.contains(name) || name == FABRIC || name == BRIDGE || name == "lo"
    }
}

/// `text` as a name: lowercase ASCII letters and digits kept, every run of anything else one
/// dash, dashes trimmed, `prefix-` before a leading digit, cut to 15 bytes. Empty when `text`
/// has no letter or digit.
pub(crate) fn sanitise(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    // Bounded: a tag of megabytes is cut long before it is all read.
    for c in text.chars().take(4 * MAX_HOST_NAME) {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        let p: String = prefix.chars().filter(|c| c.is_ascii_lowercase()).collect();
        let p = if p.is_empty() { "x".to_string() } else { p };
        out = format!("{p}-{out}");
    }
    out.truncate(MAX_HOST_NAME);
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_ids_become_host_names() {
        assert_eq!(sanitise("Web Server #1", "i"), "web-server-1");
        assert_eq!(sanitise("i-0123456789abcdef0", "i"), "i-0123456789abc");
        assert_eq!(sanitise("  --Private_A--", "subnet"), "private-a");
        assert_eq!(sanitise("10.0.1.0 subnet", "subnet"), "subnet-10-0-1-0");
        assert_eq!(sanitise("Ünïcode ☃", "sg"), "n-code");
        assert_eq!(sanitise("!!!", "sg"), "");
        // The cut leaves no trailing dash.
        assert_eq!(sanitise("abcdefghijklmn-opq", "i"), "abcdefghijklmn");
    }

    #[test]
    fn every_claimed_name_is_a_valid_unique_host_name() {
        let mut names = Names::default();
        let inputs = [
            (Some("web"), "i-1"),
            (Some("WEB"), "i-2"),
            (Some("web!"), "i-3"),
            (Some("a-very-long-name-indeed"), "i-4"),
            (Some("a-very-long-name-indeed"), "i-5"),
            (Some("fabric"), "i-6"),
            (Some("br0"), "i-7"),
            (Some("lo"), "i-8"),
            (Some("###"), "i-9"),
            (None, "###"),
            (None, ""),
            (Some("7"), "i-10"),
        ];
        let mut seen = HashSet::new();
        for (tag, id) in inputs {
            let n = names.claim(tag, id, "i");
            assert!(
                crate::spec::resolve_helpers::check_name(&n).is_ok(),
                "{tag:?}/{id}: `{n}`"
            );
            assert!(seen.insert(n.clone()), "{n} given twice");
        }
        let mut names = Names::default();
        assert_eq!(names.claim(Some("web"), "i-1", "i"), "web");
        assert_eq!(names.claim(Some("Web"), "i-2", "i"), "web-2");
        assert_eq!(names.claim(Some("WEB"), "i-3", "i"), "web-3");
        assert_eq!(names.claim(Some("fabric"), "i-4", "i"), "fabric-2");
        assert_eq!(names.claim(None, "###", "sg"), "sg");
    }
}
