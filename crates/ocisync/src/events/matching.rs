//! Which work an event asks of a sync, and the sync task that work becomes.
//!
//! A repository goes to the first rule that takes it, as in a pass (`plan`): by glob,
//! by name, or as one of an `images` rule's repositories; with no rules, every
//! repository under its own name. A pushed tag is then judged by that rule's tag
//! filters. What a filter needs every tag for (`latest: N`), and cosign or
//! referrers-schema tags (which travel with their subject, wherever it is tagged), make
//! the whole repository the work, filtered as in a pass.

use ocisync_engine::{ContentRule, RuleSource, SyncTask, TagFilter};
use ocisync_oci::{Reference, ReferrerTag, RepoName, Tag};

use super::parse::{EventKind, RegistryEvent};
use super::queue::PendingWork;

/// What a push asks of one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// That tag alone.
    Tag(Tag),
    /// Every tag of the repository the rule keeps.
    Repository,
}

/// The repository and tag a push event names, or why the event asks for no work.
pub fn pushed_tag(event: &RegistryEvent) -> Result<(&RepoName, &Tag), &'static str> {
    match event.kind {
        EventKind::Push => {}
        EventKind::Delete => return Err("a delete (acknowledged; pruning is not built)"),
        EventKind::Pull => return Err("a pull"),
        EventKind::Other => return Err("neither a push nor a delete"),
    }
    let Some(target) = &event.target else {
        return Err("names no valid repository");
    };
    match (&target.tag, target.is_manifest) {
        (Some(tag), _) => Ok((&target.repository, tag)),
        // A child of an index or a referrer: its tag's event, or the next pass, brings it.
        (None, true) => Err("a manifest pushed by digest alone"),
        (None, false) => Err("a blob"),
    }
}

/// What a push of `tag` to `repository` asks of the sync with these rules; `None` when
/// no rule takes the repository or its rule's filters drop the tag.
pub fn wanted(rules: &[ContentRule], repository: &RepoName, tag: &Tag) -> Option<Wanted> {
    let Some(rule) = rule_for(rules, repository) else {
        // No rules: every repository, every tag.
        return rules.is_empty().then(|| wanted_by_filter(&TagFilter::default(), tag));
    };
    match rule.source() {
        RuleSource::Images(images) => {
            let named = images
                .iter()
                .any(|image| &image.repository == repository && image.reference == Reference::Tag(tag.clone()));
            if named {
                Some(Wanted::Tag(tag.clone()))
            } else if ReferrerTag::parse(tag).is_some() {
                // Maybe a signature of one of its images: they are looked up again.
                Some(Wanted::Repository)
            } else {
                None
            }
        }
        RuleSource::Catalog(_) | RuleSource::Named(_) => {
            if ReferrerTag::parse(tag).is_some() {
                return Some(Wanted::Repository);
            }
            rule.tags().keeps(tag).then(|| wanted_by_filter(rule.tags(), tag))
        }
    }
}

/// A tag the include, exclude and semver filters keep: that tag, unless `latest: N`
/// must see every tag to know whether it is among the highest.
fn wanted_by_filter(filter: &TagFilter, tag: &Tag) -> Wanted {
    if ReferrerTag::parse(tag).is_some() || filter.latest().is_some() {
        Wanted::Repository
    } else {
        Wanted::Tag(tag.clone())
    }
}

/// The sync task for the work waiting on `repository`, under the rules as they are now
/// (an `images_file` may have changed since the event); `Ok(None)` when they no longer
/// ask for anything, `Err` when the destination name is not valid.
pub fn task(rules: &[ContentRule], repository: &RepoName, work: &PendingWork) -> Result<Option<SyncTask>, String> {
    let tag_references = |filter: &TagFilter| -> Option<Vec<Reference>> {
        if work.whole_repository || filter.latest().is_some() {
            return None;
        }
        Some(
            work.tags
                .keys()
                .filter(|tag| filter.keeps(tag))
                .cloned()
                .map(Reference::Tag)
                .collect(),
        )
    };
    let Some(rule) = rule_for(rules, repository) else {
        if !rules.is_empty() {
            return Ok(None);
        }
        let references = tag_references(&TagFilter::default());
        return Ok(non_empty(SyncTask::unfiltered(
            repository.clone(),
            repository.clone(),
            references,
        )));
    };
    let references = match rule.source() {
        RuleSource::Images(images) => Some(
            images
                .iter()
                .filter(|image| &image.repository == repository)
                .map(|image| image.reference.clone())
                .filter(|reference| match reference {
                    _ if work.whole_repository => true,
                    Reference::Tag(tag) => work.tags.contains_key(tag),
                    Reference::Digest(_) => false,
                })
                .collect(),
        ),
        RuleSource::Catalog(_) | RuleSource::Named(_) => tag_references(rule.tags()),
    };
    // An event names a few tags, not the upstream list a prune compares with.
    Ok(non_empty(rule.task(repository.clone(), references)?.without_prune()))
}

/// The first rule that takes `repository`, as `plan` picks it.
fn rule_for<'a>(rules: &'a [ContentRule], repository: &RepoName) -> Option<&'a ContentRule> {
    rules.iter().find(|rule| rule.takes(repository))
}

/// A task that names no reference has nothing to do.
fn non_empty(task: SyncTask) -> Option<SyncTask> {
    match task.references() {
        Some([]) => None,
        _ => Some(task),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use ocisync_engine::{ImageReference, RuleSpec, SourceSpec, TagPatterns};

    use super::*;

    fn name(text: &str) -> RepoName {
        text.parse().unwrap()
    }

    fn tag(text: &str) -> Tag {
        text.parse().unwrap()
    }

    fn rule(source: SourceSpec, tags: TagPatterns, destination: Option<&str>) -> ContentRule {
        ContentRule::new(RuleSpec {
            tags,
            destination: destination.map(str::to_owned),
            ..RuleSpec::new(source)
        })
        .unwrap()
    }

    fn include(pattern: &str) -> TagPatterns {
        TagPatterns {
            include: vec![pattern.to_owned()],
            ..TagPatterns::default()
        }
    }

    fn rules() -> Vec<ContentRule> {
        vec![
            rule(
                SourceSpec::Named(vec![name("team/app")]),
                include(r"v\d+"),
                Some("mirror"),
            ),
            rule(
                SourceSpec::Prefix("team/*".into()),
                TagPatterns {
                    latest: Some(2),
                    ..TagPatterns::default()
                },
                None,
            ),
            rule(
                SourceSpec::Images(vec![ImageReference {
                    repository: name("library/alpine"),
                    reference: Reference::Tag(tag("3.20")),
                }]),
                TagPatterns::default(),
                None,
            ),
        ]
    }

    #[test]
    fn the_first_rule_that_takes_the_repository_judges_the_tag() {
        let rules = rules();
        let cosign = format!("sha256-{}.sig", "a".repeat(64));
        let cases: &[(&str, &str, Option<Wanted>)] = &[
            ("team/app", "v2", Some(Wanted::Tag(tag("v2")))),
            // The named rule took team/app: the glob rule's filters are never asked.
            ("team/app", "dev", None),
            ("team/app", &cosign, Some(Wanted::Repository)),
            // latest: 2 needs every tag to rank them.
            ("team/lib", "1.0.0", Some(Wanted::Repository)),
            ("library/alpine", "3.20", Some(Wanted::Tag(tag("3.20")))),
            ("library/alpine", "3.19", None),
            ("other/repo", "v1", None),
        ];
        for (repository, pushed, expected) in cases {
            assert_eq!(
                &wanted(&rules, &name(repository), &tag(pushed)),
                expected,
                "{repository}:{pushed}"
            );
        }
        // No rules: every repository, every tag.
        assert_eq!(wanted(&[], &name("any/repo"), &tag("x")), Some(Wanted::Tag(tag("x"))));
    }

    fn work(tags: &[&str], whole_repository: bool) -> PendingWork {
        PendingWork {
            whole_repository,
            tags: tags.iter().map(|text| (tag(text), SystemTime::now())).collect(),
        }
    }

    #[test]
    fn tasks_carry_the_rule_and_name_only_the_pushed_tags() {
        let rules = rules();
        let task_for = |repository: &str, work: &PendingWork| task(&rules, &name(repository), work).unwrap();

        let app = task_for("team/app", &work(&["v1", "dev", "v2"], false)).unwrap();
        assert_eq!(app.destination().as_str(), "mirror/team/app");
        assert_eq!(
            app.references(),
            Some(&[Reference::Tag(tag("v1")), Reference::Tag(tag("v2"))][..]),
            "the filter still applies when the task is built"
        );
        assert_eq!(task_for("team/app", &work(&["v1"], true)).unwrap().references(), None);
        assert!(task_for("team/app", &work(&["dev"], false)).is_none());

        let lib = task_for("team/lib", &work(&["1.0.0"], false)).unwrap();
        assert_eq!(lib.references(), None, "latest: N lists every tag");

        let alpine = task_for("library/alpine", &work(&["3.20", "3.19"], false)).unwrap();
        assert_eq!(alpine.references(), Some(&[Reference::Tag(tag("3.20"))][..]));
        assert!(task_for("other/repo", &work(&["v1"], false)).is_none());

        let any = task(&[], &name("any/repo"), &work(&["x"], false)).unwrap().unwrap();
        assert_eq!(any.destination().as_str(), "any/repo");
        assert_eq!(any.references(), Some(&[Reference::Tag(tag("x"))][..]));
    }
}
