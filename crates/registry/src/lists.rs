//! Lists read page by page (catalog, tags, referrers), within bounds an upstream cannot
//! talk its way past, and the names in them turned into values, skipping the bad ones.

use std::collections::HashSet;
use std::fmt::Display;
use std::str::FromStr;

use ocisync_oci::{Descriptor, Digest, StoreError};

/// Most bytes of one list page (the same bound as a manifest).
pub const PAGE_SIZE_LIMIT: usize = 16 * 1024 * 1024;
/// Most bytes of all the pages of one list: ten times what a million names of forty
/// characters take, so no honest list comes near it, and a list that pads its pages
/// cannot keep a pass reading.
pub const LIST_SIZE_LIMIT: usize = 256 * 1024 * 1024;
/// Most pages of one list, so a registry that keeps sending `Link` headers cannot keep
/// a pass looping.
pub const MAX_PAGES: usize = 100_000;
/// Most names in one catalog or tag list.
pub const MAX_NAMES: usize = 1_000_000;
/// Most referrers of one subject: far more than any image is signed or attested.
pub const MAX_REFERRERS: usize = 10_000;
/// Bad names quoted in the warning about them; the rest are counted.
const QUOTED_BAD_NAMES: usize = 3;
/// Characters of a bad name quoted.
const QUOTED_NAME_LENGTH: usize = 64;

/// What the pages of one list have cost so far.
#[derive(Default)]
pub struct PageBudget {
    pages: usize,
    bytes: usize,
}

impl PageBudget {
    /// Counts one more page of `bytes`; an error once the list is beyond its bounds.
    pub fn take(&mut self, bytes: usize, what: &str) -> Result<(), StoreError> {
        self.pages += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.pages > MAX_PAGES {
            return Err(invalid(what, format!("more than {MAX_PAGES} pages")));
        }
        if self.bytes > LIST_SIZE_LIMIT {
            return Err(invalid(
                what,
                format!(
                    "more than {} MiB of pages; one list is read up to that much",
                    LIST_SIZE_LIMIT / (1024 * 1024)
                ),
            ));
        }
        Ok(())
    }
}

/// An error if a list has grown beyond [`MAX_NAMES`].
pub fn check_name_count(count: usize, what: &str) -> Result<(), StoreError> {
    if count > MAX_NAMES {
        return Err(invalid(
            what,
            format!("more than {MAX_NAMES} names; one list is read up to that many"),
        ));
    }
    Ok(())
}

/// The names that parse as `T`. The others are skipped with one warning for the whole
/// list (a few of them quoted, all of them counted): one bad entry upstream must not
/// cost the rest of the list.
pub fn parse_names<T>(names: Vec<String>, what: &str) -> Vec<T>
where
    T: FromStr,
    T::Err: Display,
{
    let mut parsed = Vec::with_capacity(names.len());
    let mut skipped = 0_usize;
    let mut quoted = Vec::new();
    for name in names {
        match name.parse::<T>() {
            Ok(value) => parsed.push(value),
            Err(_) => {
                skipped += 1;
                if quoted.len() < QUOTED_BAD_NAMES {
                    quoted.push(quote(&name));
                }
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(
            list = what,
            skipped,
            examples = quoted.join(", "),
            "skipped names that are not valid"
        );
    }
    parsed
}

/// A name as a warning shows it: escaped, and cut short.
fn quote(name: &str) -> String {
    match name.char_indices().nth(QUOTED_NAME_LENGTH) {
        Some((cut, _)) => format!("{:?}…", &name[..cut]),
        None => format!("{name:?}"),
    }
}

/// The referrers of one subject, gathered over pages: each digest once, at most
/// [`MAX_REFERRERS`].
#[derive(Default)]
pub struct Referrers {
    seen: HashSet<Digest>,
    descriptors: Vec<Descriptor>,
}

impl Referrers {
    /// Adds a page's descriptors not seen before; whether any were new.
    pub fn add(&mut self, page: Vec<Descriptor>, what: &str) -> Result<bool, StoreError> {
        let known = self.descriptors.len();
        for descriptor in page {
            if self.seen.insert(descriptor.digest.clone()) {
                self.descriptors.push(descriptor);
                if self.descriptors.len() > MAX_REFERRERS {
                    return Err(invalid(
                        what,
                        format!("more than {MAX_REFERRERS} referrers of one subject"),
                    ));
                }
            }
        }
        Ok(self.descriptors.len() > known)
    }

    pub fn into_descriptors(self) -> Vec<Descriptor> {
        self.descriptors
    }
}

fn invalid(what: &str, reason: String) -> StoreError {
    StoreError::Invalid {
        what: what.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocisync_oci::Tag;

    #[test]
    fn bad_names_are_skipped_and_quoted_short() {
        let long = "x".repeat(500);
        let names = vec!["1".to_owned(), "-bad".to_owned(), long.clone(), "2".to_owned()];
        let tags: Vec<Tag> = parse_names(names, "tags of a");
        assert_eq!(tags, ["1".parse::<Tag>().unwrap(), "2".parse().unwrap()]);
        assert_eq!(quote(&long).chars().count(), QUOTED_NAME_LENGTH + 3, "quotes and …");
        assert_eq!(quote("a\nb"), r#""a\nb""#, "escaped: one log line");
    }

    #[test]
    fn a_budget_counts_pages_and_bytes() {
        let mut budget = PageBudget::default();
        budget.take(LIST_SIZE_LIMIT, "x").unwrap();
        let error = budget.take(1, "x").unwrap_err();
        assert!(error.to_string().contains("256 MiB"), "{error}");
        let mut budget = PageBudget::default();
        for _ in 0..MAX_PAGES {
            budget.take(0, "x").unwrap();
        }
        assert!(budget.take(0, "x").is_err());
        assert!(check_name_count(MAX_NAMES, "x").is_ok());
        assert!(check_name_count(MAX_NAMES + 1, "x").is_err());
    }

    #[test]
    fn referrers_are_kept_once_each_up_to_the_cap() {
        let descriptor = |n: usize| Descriptor::new("m", Digest::sha256_of(n.to_string().as_bytes()), 1);
        let mut referrers = Referrers::default();
        assert!(referrers.add((0..10).map(descriptor).collect(), "x").unwrap());
        assert!(
            !referrers.add((0..10).map(descriptor).collect(), "x").unwrap(),
            "nothing new"
        );
        assert!(referrers
            .add((5..MAX_REFERRERS).map(descriptor).collect(), "x")
            .unwrap());
        assert_eq!(referrers.descriptors.len(), MAX_REFERRERS);
        assert!(referrers.add(vec![descriptor(MAX_REFERRERS)], "x").is_err());
    }
}
