//! Which destination tags a prune takes, decided from tag names and digests alone.

use std::collections::{HashMap, HashSet};

use ocisync_oci::{Digest, ReferrerTag, Tag};

use super::PrunePolicy;

/// A repository's destination tags, sorted for a prune.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Candidates {
    /// Ordinary tags the rule no longer selects upstream and nothing protects.
    pub prune: Vec<Tag>,
    /// Ordinary tags that stay: selected upstream, kept or protected.
    pub staying: Vec<Tag>,
    /// Cosign (`sha256-<hex>.sig|.att|.sbom`) and referrers-schema (`sha256-<hex>`)
    /// tags with their subject: they follow it, and are never counted as tags.
    pub attachments: Vec<(Tag, Digest)>,
}

impl Candidates {
    /// The ordinary tags of the repository: what `max_fraction` is a fraction of.
    pub fn ordinary(&self) -> usize {
        self.prune.len() + self.staying.len()
    }
}

/// Sorts `destination` tags: a tag is pruned when `upstream` (the tags the rule
/// selected in this pass) lacks it and the policy does not protect it.
pub(super) fn candidates(destination: Vec<Tag>, upstream: &HashSet<Tag>, policy: &PrunePolicy) -> Candidates {
    let mut found = Candidates::default();
    for tag in destination {
        if let Some(referrer) = ReferrerTag::parse(&tag) {
            if !policy.protects(&tag) {
                found.attachments.push((tag, referrer.subject().clone()));
            }
        } else if upstream.contains(&tag) || policy.protects(&tag) {
            found.staying.push(tag);
        } else {
            found.prune.push(tag);
        }
    }
    found
}

/// Whether pruning `prune` of `ordinary` tags deletes more than `max_fraction` of them.
pub(super) fn over_limit(prune: usize, ordinary: usize, max_fraction: f64) -> bool {
    prune as f64 > max_fraction * ordinary as f64
}

/// The attachments that follow their subject out: those whose subject `gone` holds
/// (a digest the prune took the last tag of) and no staying tag names.
pub(super) fn attachments_to_prune(
    attachments: &[(Tag, Digest)],
    gone: &HashSet<Digest>,
    staying: &HashMap<Digest, Tag>,
) -> Vec<(Tag, Digest)> {
    attachments
        .iter()
        .filter(|(_, subject)| gone.contains(subject) && !staying.contains_key(subject))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::whole_tag_regex;
    use crate::prune::PruneSpec;

    fn tags(names: &[&str]) -> Vec<Tag> {
        names.iter().map(|name| name.parse().unwrap()).collect()
    }

    fn digest(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64)).parse().unwrap()
    }

    fn policy(keep: &[&str], protected: &[&str]) -> PrunePolicy {
        let spec = PruneSpec {
            enabled: true,
            max_fraction: None,
            keep: keep.iter().map(|pattern| (*pattern).to_owned()).collect(),
        };
        let mut policy = PrunePolicy::compile(&spec).unwrap().unwrap();
        for pattern in protected {
            policy.protect(whole_tag_regex(pattern).unwrap());
        }
        policy
    }

    #[test]
    fn tags_upstream_lacks_are_pruned_unless_kept_or_protected() {
        let signature = format!("sha256-{}.sig", "a".repeat(64));
        let schema = format!("sha256-{}", "b".repeat(64));
        let destination = tags(&["v1", "v2", "v3", "stable", "v2-backup", &signature, &schema]);
        let upstream: HashSet<Tag> = tags(&["v3", "v4"]).into_iter().collect();
        let found = candidates(destination, &upstream, &policy(&["stable"], &[r".*-backup"]));
        assert_eq!(found.prune, tags(&["v1", "v2"]));
        assert_eq!(found.staying, tags(&["v3", "stable", "v2-backup"]));
        assert_eq!(
            found.attachments,
            vec![
                (signature.parse().unwrap(), digest('a')),
                (schema.parse().unwrap(), digest('b'))
            ]
        );
        assert_eq!(found.ordinary(), 5, "attachments are not counted as tags");
    }

    #[test]
    fn keep_is_a_whole_tag_match() {
        let found = candidates(tags(&["v1", "v10", "xv1"]), &HashSet::new(), &policy(&["v1"], &[]));
        assert_eq!(found.prune, tags(&["v10", "xv1"]));
        assert_eq!(found.staying, tags(&["v1"]));
    }

    #[test]
    fn the_limit_is_a_share_of_the_ordinary_tags() {
        // (to prune, ordinary tags, max_fraction, refused)
        let cases = [
            (2, 4, 0.5, false),
            (3, 4, 0.5, true),
            (1, 1, 1.0, false),
            (1, 3, 0.3, true),
            (0, 0, 0.5, false),
            (1, 10, 0.1, false),
        ];
        for (prune, ordinary, max_fraction, refused) in cases {
            assert_eq!(
                over_limit(prune, ordinary, max_fraction),
                refused,
                "{prune} of {ordinary} at {max_fraction}"
            );
        }
    }

    #[test]
    fn attachments_follow_only_a_subject_that_went() {
        let attachments = vec![
            (tags(&["sig-a"])[0].clone(), digest('a')),
            (tags(&["sig-b"])[0].clone(), digest('b')),
            (tags(&["sig-c"])[0].clone(), digest('c')),
        ];
        let gone: HashSet<Digest> = [digest('a'), digest('b')].into_iter().collect();
        // b went with one tag, but another tag that stays names it too.
        let staying: HashMap<Digest, Tag> = [(digest('b'), tags(&["latest"])[0].clone())].into_iter().collect();
        let pruned = attachments_to_prune(&attachments, &gone, &staying);
        assert_eq!(pruned, vec![(tags(&["sig-a"])[0].clone(), digest('a'))]);
    }
}
