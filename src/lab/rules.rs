//! The lab's rule book: every nftables rule tcplab loaded, by namespace, table, chain and
//! handle, with the origin it stands for and the ruleset (revision) it belongs to. A trace
//! event names a rule only by those four, so this is how a traced packet finds its rule.

use std::collections::HashMap;

use crate::firewall::{Family, Loaded, Origin, Table};
use crate::spec::Placement;

/// Where a rule sits, as a trace event tells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RuleAt {
    pub place: Placement,
    pub family: Family,
    pub table: String,
    pub chain: String,
    pub handle: u64,
}

/// One origin of a rule, and the ruleset it came with.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub origin: Origin,
    pub revision: usize,
}

/// What the lab loaded, for attribution.
#[derive(Debug, Default)]
pub(crate) struct RuleBook {
    entries: Vec<Entry>,
    rules: HashMap<RuleAt, usize>,
    /// What made each revision: the topology, then each change.
    revisions: Vec<String>,
    /// The tables each namespace holds now, for the next change to replace.
    current: HashMap<Placement, Vec<(Family, String)>>,
    /// Whether the rules mark packets for tracing.
    pub trace: bool,
}

/// Longest comment the nft CLI and libnftnl accept, without its NUL.
const MAX_COMMENT: usize = 127;

impl RuleBook {
    pub fn new(trace: bool) -> RuleBook {
        RuleBook {
            revisions: vec![crate::attribution::TOPOLOGY.into()],
            trace,
            ..RuleBook::default()
        }
    }

    /// The next revision, made by `why` (e.g. `step 4`).
    pub fn next_revision(&mut self, why: Option<&str>) -> usize {
        let n = self.revisions.len();
        self.revisions
            .push(why.map_or_else(|| format!("rule change {n}"), str::to_string));
        n
    }

    /// What made `revision`.
    pub fn revision(&self, revision: usize) -> &str {
        self.revisions
            .get(revision)
            .map_or("an unknown change", String::as_str)
    }

    /// Gives each rule with an origin a comment that starts with the origin's id: what the
    /// kernel hands back with the rule's handle.
    pub fn label(&mut self, revision: usize, tables: &mut [Table]) {
        for table in tables {
            for chain in &mut table.chains {
                for rule in &mut chain.rules {
                    if let Some(origin) = &rule.origin {
                        let id = self.entries.len();
                        self.entries.push(Entry {
                            origin: origin.clone(),
                            revision,
                        });
                        rule.comment = Some(cut(format!("{id} {origin}")));
                    }
                }
            }
        }
    }

    /// Takes note of what the kernel holds in `place` after a load of `tables`.
    pub fn loaded(&mut self, place: Placement, tables: &[Table], rules: Vec<Loaded>) {
        self.current.insert(
            place,
            tables.iter().map(|t| (t.family, t.name.clone())).collect(),
        );
        self.record(place, rules);
    }

    /// Takes note of rules loaded in `place` in tables of their own (a link's exact drops),
    /// which rule changes leave alone.
    pub fn record(&mut self, place: Placement, rules: Vec<Loaded>) {
        for r in rules {
            let id = r
                .comment
                .as_deref()
                .and_then(|c| c.split(' ').next())
                .and_then(|id| id.parse::<usize>().ok())
                .filter(|id| *id < self.entries.len());
            if let Some(id) = id {
                self.rules.insert(
                    RuleAt {
                        place,
                        family: r.family,
                        table: r.table,
                        chain: r.chain,
                        handle: r.handle,
                    },
                    id,
                );
            }
        }
    }

    /// The tables `place` holds now.
    pub fn current(&self, place: Placement) -> Vec<(Family, String)> {
        self.current.get(&place).cloned().unwrap_or_default()
    }

    /// The rule a trace event names, if tcplab made it.
    pub fn find(&self, at: &RuleAt) -> Option<&Entry> {
        self.rules.get(at).and_then(|id| self.entries.get(*id))
    }
}

/// A comment cut to what the kernel keeps, on a character boundary.
fn cut(mut s: String) -> String {
    if s.len() > MAX_COMMENT {
        let mut end = MAX_COMMENT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_comments_are_cut_on_a_character_boundary() {
        let s = cut("é".repeat(100));
        assert!(s.len() <= MAX_COMMENT);
        assert!(s.chars().all(|c| c == 'é'));
    }
}
