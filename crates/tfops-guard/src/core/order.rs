//! `order` — deletion order of a release's `Terraform` CRs: dependants before their
//! dependencies (`spec.dependsOn`). Pure.
//!
//! The guard deletes a CR only once every in-release dependant of it has reached a terminal
//! outcome (see `engine`), so the order here is also the order of `DELETE` requests. Cycles
//! (which tofu-controller itself would deadlock on) are broken deterministically by name and
//! reported, never looped on.

use std::collections::{BTreeMap, BTreeSet};

/// Identity of a CR for ordering purposes: (namespace, name).
pub type Key = (String, String);

/// One CR and its `spec.dependsOn` targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key: Key,
    pub depends_on: Vec<Key>,
}

/// The computed order plus the dependants relation (restricted to the given set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletionOrder {
    /// Dependants first; ties by (namespace, name).
    pub order: Vec<Key>,
    /// For each CR, its dependants inside the set.
    pub dependants: BTreeMap<Key, BTreeSet<Key>>,
    /// CRs that were on a `dependsOn` cycle (their relative order is by name).
    pub cyclic: BTreeSet<Key>,
}

impl DeletionOrder {
    /// In-set dependants of `key`.
    pub fn dependants_of(&self, key: &Key) -> impl Iterator<Item = &Key> {
        self.dependants.get(key).into_iter().flatten()
    }
}

/// Every key reachable from `key` along `next` (`key` itself only through a cycle): the
/// transitive dependants or dependencies, whichever relation `next` gives.
pub fn reachable<'a, I>(key: &Key, next: impl Fn(&Key) -> I) -> BTreeSet<Key>
where
    I: IntoIterator<Item = &'a Key>,
{
    let mut seen = BTreeSet::new();
    let mut stack: Vec<Key> = next(key).into_iter().cloned().collect();
    while let Some(k) = stack.pop() {
        if seen.insert(k.clone()) {
            stack.extend(next(&k).into_iter().cloned());
        }
    }
    seen
}

/// Order `nodes` dependants-first. Dependencies outside the set are ignored.
pub fn deletion_order(nodes: &[Node]) -> DeletionOrder {
    let keys: BTreeSet<Key> = nodes.iter().map(|n| n.key.clone()).collect();
    let mut dependants: BTreeMap<Key, BTreeSet<Key>> =
        keys.iter().map(|k| (k.clone(), BTreeSet::new())).collect();
    for n in nodes {
        for d in &n.depends_on {
            if keys.contains(d) && d != &n.key {
                dependants
                    .entry(d.clone())
                    .or_default()
                    .insert(n.key.clone());
            }
        }
    }
    // Kahn's algorithm on "dependant -> dependency" edges: a CR is ready once all its
    // dependants are placed.
    let mut remaining: BTreeMap<Key, usize> = dependants
        .iter()
        .map(|(k, ds)| (k.clone(), ds.len()))
        .collect();
    let mut depends: BTreeMap<Key, BTreeSet<Key>> = BTreeMap::new();
    for (dep, ds) in &dependants {
        for d in ds {
            depends.entry(d.clone()).or_default().insert(dep.clone());
        }
    }
    let mut order = Vec::with_capacity(keys.len());
    let mut placed: BTreeSet<Key> = BTreeSet::new();
    let mut cyclic = BTreeSet::new();
    while placed.len() < keys.len() {
        let ready: Vec<Key> = remaining
            .iter()
            .filter(|(k, n)| **n == 0 && !placed.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        let batch = if ready.is_empty() {
            // Cycle: take the smallest unplaced key and record it.
            let Some(k) = keys.iter().find(|k| !placed.contains(*k)).cloned() else {
                break;
            };
            cyclic.insert(k.clone());
            vec![k]
        } else {
            ready
        };
        for k in batch {
            placed.insert(k.clone());
            for dep in depends.get(&k).into_iter().flatten() {
                if let Some(n) = remaining.get_mut(dep) {
                    *n = n.saturating_sub(1);
                }
            }
            order.push(k);
        }
    }
    // Everything on a cycle: any node whose dependants could not all be placed before it.
    let pos: BTreeMap<&Key, usize> = order.iter().enumerate().map(|(i, k)| (k, i)).collect();
    for (dep, ds) in &dependants {
        if ds.iter().any(|d| pos[d] > pos[dep]) {
            cyclic.insert(dep.clone());
        }
    }
    DeletionOrder {
        order,
        dependants,
        cyclic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> Key {
        ("ns".to_owned(), n.to_owned())
    }
    fn node(n: &str, deps: &[&str]) -> Node {
        Node {
            key: k(n),
            depends_on: deps.iter().map(|d| k(d)).collect(),
        }
    }
    fn names(o: &DeletionOrder) -> Vec<&str> {
        o.order.iter().map(|(_, n)| n.as_str()).collect()
    }

    #[test]
    fn reachable_follows_the_relation_transitively_and_stops_on_cycles() {
        let edges: BTreeMap<Key, Vec<Key>> = [
            (k("app"), vec![k("db")]),
            (k("db"), vec![k("vpc"), k("app")]),
            (k("vpc"), vec![]),
        ]
        .into_iter()
        .collect();
        let from = |n: &str| reachable(&k(n), |x| edges.get(x).into_iter().flatten());
        assert_eq!(
            from("app").into_iter().map(|k| k.1).collect::<Vec<_>>(),
            ["app", "db", "vpc"]
        );
        assert!(from("vpc").is_empty());
    }

    #[test]
    fn empty_set() {
        assert!(deletion_order(&[]).order.is_empty());
    }

    #[test]
    fn chain_is_reversed() {
        // app -> db -> vpc (app depends on db, db on vpc)
        let o = deletion_order(&[node("vpc", &[]), node("db", &["vpc"]), node("app", &["db"])]);
        assert_eq!(names(&o), ["app", "db", "vpc"]);
        assert!(o.cyclic.is_empty());
        assert_eq!(o.dependants_of(&k("vpc")).collect::<Vec<_>>(), [&k("db")]);
    }

    #[test]
    fn diamond_and_ties_by_name() {
        let o = deletion_order(&[
            node("net", &[]),
            node("b", &["net"]),
            node("a", &["net"]),
            node("top", &["a", "b"]),
            node("lone", &[]),
        ]);
        assert_eq!(names(&o), ["lone", "top", "a", "b", "net"]);
    }

    #[test]
    fn outside_and_self_dependencies_are_ignored() {
        let o = deletion_order(&[node("a", &["elsewhere", "a"])]);
        assert_eq!(names(&o), ["a"]);
        assert!(o.cyclic.is_empty());
    }

    #[test]
    fn cycles_terminate_and_are_reported() {
        let o = deletion_order(&[node("a", &["b"]), node("b", &["a"]), node("c", &["a"])]);
        assert_eq!(o.order.len(), 3);
        assert!(o.cyclic.contains(&k("a")) || o.cyclic.contains(&k("b")));
        // c depends on a and is not on the cycle: it comes before a.
        let pos = |n: &str| o.order.iter().position(|x| x == &k(n)).unwrap();
        assert!(pos("c") < pos("a"));
    }

    #[test]
    fn every_dependant_precedes_its_dependency_in_random_dags() {
        use proptest::prelude::*;
        proptest!(|(edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30))| {
            // Only edges i -> j with i > j (acyclic).
            let mut nodes: Vec<Node> = (0..12).map(|i| node(&format!("n{i:02}"), &[])).collect();
            for (a, b) in edges {
                if a > b {
                    nodes[a].depends_on.push(k(&format!("n{b:02}")));
                }
            }
            let o = deletion_order(&nodes);
            prop_assert_eq!(o.order.len(), 12);
            prop_assert!(o.cyclic.is_empty());
            let pos: BTreeMap<_, _> = o.order.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
            for n in &nodes {
                for d in &n.depends_on {
                    prop_assert!(pos[&n.key] < pos[d]);
                }
            }
        });
    }
}
