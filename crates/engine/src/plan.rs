//! The planner: one sync task per upstream repository that a content rule takes.

use std::collections::{HashMap, HashSet};

use ocisync_oci::{Reference, RepoName};

use crate::filter::{ContentRule, PlatformSpec, RuleSource, TagFilter};
use crate::report::RuleReport;
use crate::shard::Shard;
use crate::signatures::SignaturePolicy;

/// The unit of work: copy the kept tags of one upstream repository to its destination
/// name. Built by the planner, by [`ContentRule::task`] or by [`SyncTask::unfiltered`].
#[derive(Debug, Clone)]
pub struct SyncTask {
    pub(crate) source: RepoName,
    pub(crate) destination: RepoName,
    pub(crate) tags: TagFilter,
    /// Platforms kept from multi-arch indexes; empty keeps indexes whole.
    pub(crate) platforms: Vec<PlatformSpec>,
    /// What the rule demands of signatures before an image is copied.
    pub(crate) signatures: SignaturePolicy,
    /// Exactly these tags and digests (an `images` rule): no tag list is read and no tag
    /// filter applies. `None`: the repository's tags, filtered.
    pub(crate) references: Option<Vec<Reference>>,
}

impl SyncTask {
    /// The upstream repository.
    pub fn source(&self) -> &RepoName {
        &self.source
    }

    /// Its name at the destination.
    pub fn destination(&self) -> &RepoName {
        &self.destination
    }

    /// Exactly these tags and digests; `None`: the repository's tags, filtered.
    pub fn references(&self) -> Option<&[Reference]> {
        self.references.as_deref()
    }

    /// `source` to `destination` with every tag, as a sync without rules takes a
    /// repository (under its own name); `references`: only these (see
    /// [`SyncTask::references`]).
    pub fn unfiltered(source: RepoName, destination: RepoName, references: Option<Vec<Reference>>) -> SyncTask {
        SyncTask {
            source,
            destination,
            tags: TagFilter::default(),
            platforms: Vec::new(),
            signatures: SignaturePolicy::default(),
            references,
        }
    }
}

impl ContentRule {
    /// The task of `source` under this rule: its destination name, filters, platforms
    /// and signature policy; `references`: only these. `Err` when the destination name
    /// is not a valid repository name.
    pub fn task(&self, source: RepoName, references: Option<Vec<Reference>>) -> Result<SyncTask, String> {
        Ok(SyncTask {
            destination: self.map_name(&source)?,
            source,
            tags: self.tags.clone(),
            platforms: self.platforms.clone(),
            signatures: self.signatures.clone(),
            references,
        })
    }
}

/// A repository a rule took but whose destination name is not a valid repository name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDestination {
    pub source: RepoName,
    pub reason: String,
}

/// What the planner made of the rules: the tasks, and per rule how many it took.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tasks: Vec<SyncTask>,
    pub bad_destinations: Vec<BadDestination>,
    /// One per content rule, in config order (none when the sync has no rules).
    pub rules: Vec<RuleReport>,
}

/// Whether planning `rules` needs the upstream catalog: with no rules at all (every
/// repository), or when a rule matches a glob against it.
pub fn needs_catalog(rules: &[ContentRule]) -> bool {
    rules.is_empty() || rules.iter().any(|rule| matches!(rule.source, RuleSource::Catalog(_)))
}

/// Turns the rules (and the upstream catalog, where it could be read) into sync tasks.
/// With no content rules every catalog repository is synced under its own name with
/// every tag. With rules, each repository goes to the first rule, in config order, that
/// takes it: a `prefix` rule takes the catalog's repositories its glob matches (none
/// when `catalog` is `None`), a `repositories` rule the names it lists, an `images`
/// rule the repositories of its images. Only the shard's repositories are kept.
pub fn plan(catalog: Option<&[RepoName]>, rules: &[ContentRule], shard: Option<Shard>) -> Plan {
    let in_shard = |repo: &RepoName| shard.is_none_or(|shard| shard.takes(repo));
    let mut plan = Plan {
        tasks: Vec::new(),
        bad_destinations: Vec::new(),
        rules: Vec::new(),
    };
    if rules.is_empty() {
        for source in catalog.unwrap_or_default().iter().filter(|repo| in_shard(repo)) {
            plan.tasks
                .push(SyncTask::unfiltered(source.clone(), source.clone(), None));
        }
        return plan;
    }
    let mut taken: HashSet<RepoName> = HashSet::new();
    for (index, rule) in rules.iter().enumerate() {
        let candidates: Vec<(RepoName, Option<Vec<Reference>>)> = match &rule.source {
            RuleSource::Catalog(glob) => catalog
                .unwrap_or_default()
                .iter()
                .filter(|repo| glob.is_match(repo))
                .map(|repo| (repo.clone(), None))
                .collect(),
            RuleSource::Named(names) => names.iter().map(|repo| (repo.clone(), None)).collect(),
            RuleSource::Images(images) => {
                // One task per repository, its references in the order written.
                let mut order = Vec::new();
                let mut by_repository: HashMap<RepoName, Vec<Reference>> = HashMap::new();
                for image in images {
                    let references = by_repository.entry(image.repository.clone()).or_insert_with(|| {
                        order.push(image.repository.clone());
                        Vec::new()
                    });
                    if !references.contains(&image.reference) {
                        references.push(image.reference.clone());
                    }
                }
                order
                    .into_iter()
                    .map(|repo| {
                        let references = by_repository.remove(&repo);
                        (repo, references)
                    })
                    .collect()
            }
        };
        let mut repositories = 0;
        for (source, references) in candidates {
            if !in_shard(&source) || !taken.insert(source.clone()) {
                continue;
            }
            repositories += 1;
            match rule.task(source.clone(), references) {
                Ok(task) => plan.tasks.push(task),
                Err(reason) => plan.bad_destinations.push(BadDestination { source, reason }),
            }
        }
        plan.rules.push(RuleReport {
            rule: index,
            source: rule.source.kind(),
            selector: rule.source.describe(),
            repositories,
            error: None,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{ImageReference, RepoGlob, RuleSourceKind};

    fn name(text: &str) -> RepoName {
        text.parse().unwrap()
    }

    fn rule(source: RuleSource, destination: Option<&str>) -> ContentRule {
        ContentRule {
            source,
            tags: TagFilter::default(),
            platforms: Vec::new(),
            strip_prefix: None,
            destination: destination.map(str::to_owned),
            signatures: SignaturePolicy::default(),
        }
    }

    fn image(repository: &str, reference: &str) -> ImageReference {
        let reference = match reference.strip_prefix('@') {
            Some(digest) => Reference::Digest(digest.parse().unwrap()),
            None => Reference::Tag(reference.parse().unwrap()),
        };
        ImageReference {
            repository: name(repository),
            reference,
        }
    }

    fn summary(plan: &Plan) -> Vec<(String, String, Option<usize>)> {
        plan.tasks
            .iter()
            .map(|task| {
                (
                    task.source.to_string(),
                    task.destination.to_string(),
                    task.references.as_ref().map(Vec::len),
                )
            })
            .collect()
    }

    #[test]
    fn named_and_image_rules_plan_without_a_catalog() {
        let digest = format!("@sha256:{}", "b".repeat(64));
        let rules = [
            rule(
                RuleSource::Named(vec![name("library/nginx"), name("team/app")]),
                Some("hub"),
            ),
            rule(
                RuleSource::Images(vec![
                    image("library/alpine", "3.20"),
                    image("library/alpine", &digest),
                    image("library/alpine", "3.20"),
                    image("team/app", "v9"),
                ]),
                None,
            ),
            rule(RuleSource::Catalog(RepoGlob::new("team/*").unwrap()), None),
        ];
        assert!(needs_catalog(&rules));
        assert!(!needs_catalog(&rules[..2]));
        let plan = plan(None, &rules, None);
        assert_eq!(
            summary(&plan),
            [
                ("library/nginx".into(), "hub/library/nginx".into(), None),
                ("team/app".into(), "hub/team/app".into(), None),
                // Duplicates collapse; team/app was taken by the first rule.
                ("library/alpine".into(), "library/alpine".into(), Some(2)),
            ]
        );
        let kinds: Vec<(RuleSourceKind, usize)> = plan.rules.iter().map(|r| (r.source, r.repositories)).collect();
        assert_eq!(
            kinds,
            [
                (RuleSourceKind::Named, 2),
                (RuleSourceKind::Images, 1),
                (RuleSourceKind::Catalog, 0)
            ]
        );
    }

    #[test]
    fn first_rule_that_takes_a_repository_wins_across_kinds() {
        let rules = [
            rule(RuleSource::Catalog(RepoGlob::new("team/**").unwrap()), Some("a")),
            rule(RuleSource::Named(vec![name("team/app"), name("other/x")]), Some("b")),
        ];
        let catalog = [name("team/app"), name("team/lib"), name("elsewhere/y")];
        let plan = plan(Some(&catalog), &rules, None);
        assert_eq!(
            summary(&plan),
            [
                ("team/app".into(), "a/team/app".into(), None),
                ("team/lib".into(), "a/team/lib".into(), None),
                ("other/x".into(), "b/other/x".into(), None),
            ]
        );
    }

    #[test]
    fn no_rules_take_the_whole_catalog_and_shards_split_named_repositories() {
        let catalog = [name("a"), name("b")];
        assert_eq!(plan(Some(&catalog), &[], None).tasks.len(), 2);
        assert!(plan(None, &[], None).tasks.is_empty());
        let names: Vec<RepoName> = (0..40).map(|i| name(&format!("repo{i}"))).collect();
        let rules = [rule(RuleSource::Named(names.clone()), None)];
        let shards: Vec<Shard> = (0..3).map(|index| format!("{index}/3").parse().unwrap()).collect();
        let mut seen: Vec<String> = shards
            .iter()
            .flat_map(|shard| plan(None, &rules, Some(*shard)).tasks)
            .map(|task| task.source.to_string())
            .collect();
        seen.sort();
        let mut expected: Vec<String> = names.iter().map(ToString::to_string).collect();
        expected.sort();
        assert_eq!(seen, expected, "shards are disjoint and cover the named repositories");
    }
}
