//! The group-sync rules: a delegate's sources and what they grant, when a removal is held
//! for confirmation, and the drift between a binding's group and its delegates. Plain
//! data; `service::sync` applies them to events and reconciles.
//!
//! Decisions (also in the README):
//! - A delegate's sources are `manual` and `group:<id>` (one per bound group). It is removed
//!   only when no source is left; its permissions are the union of its sources' (manual: the
//!   relationship's; a group: its binding's) within the relationship's.
//! - Events are applied against the membership as it is now, not as the event says it was:
//!   an `add` for someone no longer in the group, or a `remove` for someone back in it, only
//!   marks the event done. Duplicates and out-of-order events therefore converge.
//! - Removals from one event batch or reconcile that would take away more than the threshold
//!   of one relationship's delegates (default: more than 50 % and more than 10) are held for
//!   an admin to confirm or discard; adds are never held.

use std::collections::{BTreeMap, BTreeSet};

use super::authz::PermissionSet;
use super::delegation::delegate_permissions;

/// The manual source.
pub const MANUAL: &str = "manual";

/// One source of a delegate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Manual,
    Group(String),
}

impl Source {
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            MANUAL => Some(Source::Manual),
            _ => s.strip_prefix("group:").filter(|g| !g.is_empty()).map(|g| Source::Group(g.to_owned())),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Source::Manual => MANUAL.to_owned(),
            Source::Group(g) => format!("group:{g}"),
        }
    }
}

/// What a delegate holds: the union of its sources' permissions within the relationship's,
/// never token, role or relationship edit rights. A group source whose binding is gone
/// grants nothing.
pub fn delegate_holds(
    sources: &[String],
    relationship: PermissionSet,
    bindings: &BTreeMap<String, PermissionSet>,
) -> PermissionSet {
    let mut union = PermissionSet::EMPTY;
    for s in sources.iter().filter_map(|s| Source::parse(s)) {
        union = union.union(match s {
            Source::Manual => relationship,
            Source::Group(g) => bindings.get(&g).copied().unwrap_or(PermissionSet::EMPTY),
        });
    }
    delegate_permissions(union.intersection(relationship))
}

/// Adds a source; false when it was there already.
pub fn add_source(sources: &mut Vec<String>, source: &Source) -> bool {
    let name = source.name();
    if sources.contains(&name) {
        return false;
    }
    sources.push(name);
    sources.sort();
    true
}

/// Drops a source; false when it was not there.
pub fn remove_source(sources: &mut Vec<String>, source: &Source) -> bool {
    let name = source.name();
    let before = sources.len();
    sources.retain(|s| *s != name);
    sources.len() != before
}

/// When removals are held for confirmation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// Held when more than this share of the relationship's delegates would go…
    pub fraction: f64,
    /// …and more than this many.
    pub min_count: usize,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold { fraction: 0.5, min_count: 10 }
    }
}

impl Threshold {
    /// Would removing `removals` of `delegates` delegates be held?
    pub fn holds(self, removals: usize, delegates: usize) -> bool {
        removals > self.min_count && (removals as f64) > self.fraction * (delegates as f64)
    }
}

/// The difference between who should carry a group source and who does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Members of the group without the source.
    pub missing: Vec<String>,
    /// Carriers of the source no longer in the group.
    pub extra: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

pub fn drift(members: &BTreeSet<String>, carriers: &BTreeSet<String>) -> Drift {
    Drift {
        missing: members.difference(carriers).cloned().collect(),
        extra: carriers.difference(members).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::authz::{Area, Permission};

    fn set(ps: &[Permission]) -> PermissionSet {
        ps.iter().copied().collect()
    }

    #[test]
    fn sources_parse_and_print() {
        assert_eq!(Source::parse("manual"), Some(Source::Manual));
        assert_eq!(Source::parse("group:g1"), Some(Source::Group("g1".into())));
        assert_eq!(Source::parse("group:"), None);
        assert_eq!(Source::parse("other"), None);
        assert_eq!(Source::Group("g1".into()).name(), "group:g1");
    }

    #[test]
    fn permissions_are_the_union_of_the_sources_within_the_relationship() {
        let rel = set(&[Permission::edit(Area::Users), Permission::view(Area::Groups), Permission::edit(Area::Tokens)]);
        let bindings: BTreeMap<String, PermissionSet> = [
            ("a".to_owned(), set(&[Permission::view(Area::Users)])),
            ("b".to_owned(), set(&[Permission::view(Area::Groups), Permission::edit(Area::Sso)])),
        ]
        .into_iter()
        .collect();
        let both = delegate_holds(&["group:a".into(), "group:b".into()], rel, &bindings);
        assert!(both.contains(Permission::view(Area::Users)) && both.contains(Permission::view(Area::Groups)));
        assert!(!both.contains(Permission::edit(Area::Users)), "only the manual source carries the whole scope");
        assert!(!both.contains(Permission::view(Area::Sso)), "never beyond the relationship");
        let manual = delegate_holds(&["manual".into()], rel, &bindings);
        assert!(manual.contains(Permission::edit(Area::Users)));
        assert!(!manual.contains(Permission::edit(Area::Tokens)), "never token edit rights");
        assert!(delegate_holds(&["group:gone".into()], rel, &bindings).is_empty());
    }

    #[test]
    fn sources_are_added_and_removed_once() {
        let mut s = vec!["manual".to_owned()];
        assert!(add_source(&mut s, &Source::Group("g".into())));
        assert!(!add_source(&mut s, &Source::Group("g".into())));
        assert_eq!(s, vec!["group:g", "manual"]);
        assert!(remove_source(&mut s, &Source::Manual));
        assert!(!remove_source(&mut s, &Source::Manual));
        assert_eq!(s, vec!["group:g"]);
    }

    #[test]
    fn only_large_removals_are_held() {
        let t = Threshold::default();
        assert!(!t.holds(1, 1), "an ordinary single removal applies");
        assert!(!t.holds(10, 12), "not more than 10");
        assert!(t.holds(11, 12));
        assert!(!t.holds(11, 30), "not more than half");
        assert!(t.holds(16, 30));
    }

    #[test]
    fn drift_is_both_ways() {
        let m: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let c: BTreeSet<String> = ["b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(drift(&m, &c), Drift { missing: vec!["a".into()], extra: vec!["c".into()] });
        assert!(drift(&m, &m).is_empty());
    }
}
