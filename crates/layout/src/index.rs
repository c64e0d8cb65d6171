//! `index.json`, the entry point of a layout: its entries are the tags.
//!
//! A tag is an entry whose annotation `org.opencontainers.image.ref.name` is the tag
//! (image-layout spec, "index.json"). Entries and fields ocisync does not use (those of
//! untagged images, `data`, other annotations) are kept as they are, so rewriting the
//! index after a tag move loses nothing another tool wrote.

use std::collections::BTreeMap;

use ocisync_oci::media_type::OCI_INDEX;
use ocisync_oci::{Descriptor, Digest, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The annotation that names an entry (here: the tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The content of `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexFile {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Map<String, Value>>,
    /// Every other top-level field (`annotations`, …), written back unchanged.
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// What ocisync reads from one index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `None` when the entry omits it (the spec requires it; be lenient on read).
    pub media_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
}

impl IndexFile {
    /// The index of a new, empty layout.
    pub fn empty() -> Self {
        IndexFile {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            other: Map::new(),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let index: IndexFile = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
        if index.schema_version != 2 {
            return Err(format!("schemaVersion {} is not 2", index.schema_version));
        }
        Ok(index)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec_pretty(self).map_err(|error| error.to_string())
    }

    /// Every tag named in the index, sorted, each once. Names that are not valid tags
    /// (ref.name may hold a full reference) cannot be copied to a registry: left out.
    pub fn tags(&self) -> Vec<Tag> {
        let mut tags: Vec<Tag> = self
            .manifests
            .iter()
            .filter_map(ref_name)
            .filter_map(|name| name.parse().ok())
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// The entry tagged `tag`; the first one if another tool wrote several, as skopeo reads it.
    pub fn find_tag(&self, tag: &Tag) -> Result<Option<Entry>, String> {
        self.manifests
            .iter()
            .find(|entry| ref_name(entry) == Some(tag.as_str()))
            .map(parse_entry)
            .transpose()
    }

    /// The media type an entry declares for `digest`, if any entry points at it.
    pub fn media_type_of(&self, digest: &Digest) -> Option<String> {
        self.manifests
            .iter()
            .filter_map(|entry| parse_entry(entry).ok())
            .find(|entry| entry.digest == *digest)
            .and_then(|entry| entry.media_type)
    }

    /// Points `tag` at `descriptor`. Every other entry with that name is removed, so a
    /// tag never has two entries; the new entry takes the place of the first old one.
    pub fn set_tag(&mut self, tag: &Tag, descriptor: &Descriptor) {
        let position = self
            .manifests
            .iter()
            .position(|entry| ref_name(entry) == Some(tag.as_str()));
        self.manifests.retain(|entry| ref_name(entry) != Some(tag.as_str()));
        let entry = tag_entry(tag, descriptor);
        match position {
            Some(position) => self.manifests.insert(position, entry),
            None => self.manifests.push(entry),
        }
    }

    /// Removes every entry named `tag`; whether there was one.
    pub fn remove_tag(&mut self, tag: &Tag) -> bool {
        let before = self.manifests.len();
        self.manifests.retain(|entry| ref_name(entry) != Some(tag.as_str()));
        self.manifests.len() != before
    }

    /// Removes every entry pointing at `digest`, tagged or not; whether there was one.
    pub fn remove_digest(&mut self, digest: &Digest) -> bool {
        let before = self.manifests.len();
        self.manifests
            .retain(|entry| entry.get("digest").and_then(Value::as_str) != Some(digest.to_string().as_str()));
        self.manifests.len() != before
    }

    /// The digest of every entry (tagged or not) that parses: the roots a garbage
    /// collection keeps, with everything they reference. An entry that does not parse
    /// is an error, so that nothing it might reference is removed.
    pub fn root_digests(&self) -> Result<Vec<Digest>, String> {
        self.manifests
            .iter()
            .map(|entry| parse_entry(entry).map(|entry| entry.digest))
            .collect()
    }

    #[cfg(test)]
    fn entries_named(&self, tag: &str) -> usize {
        self.manifests
            .iter()
            .filter(|entry| ref_name(entry) == Some(tag))
            .count()
    }
}

fn ref_name(entry: &Map<String, Value>) -> Option<&str> {
    entry.get("annotations")?.get(REF_NAME)?.as_str()
}

fn parse_entry(entry: &Map<String, Value>) -> Result<Entry, String> {
    let digest = entry
        .get("digest")
        .and_then(Value::as_str)
        .ok_or("an entry has no digest")?;
    let digest: Digest = digest
        .parse()
        .map_err(|error: ocisync_oci::ParseError| error.to_string())?;
    let size = entry
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("entry {digest} has no size"))?;
    let media_type = entry.get("mediaType").and_then(Value::as_str).map(str::to_owned);
    Ok(Entry {
        media_type,
        digest,
        size,
    })
}

fn tag_entry(tag: &Tag, descriptor: &Descriptor) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("mediaType".into(), Value::from(descriptor.media_type.clone()));
    entry.insert("digest".into(), Value::from(descriptor.digest.to_string()));
    entry.insert("size".into(), Value::from(descriptor.size));
    let annotations = BTreeMap::from([(REF_NAME.to_owned(), Value::from(tag.as_str()))]);
    entry.insert("annotations".into(), Value::Object(annotations.into_iter().collect()));
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocisync_oci::media_type::OCI_MANIFEST;

    fn tag(name: &str) -> Tag {
        name.parse().unwrap()
    }

    fn manifest_descriptor(content: &[u8]) -> Descriptor {
        Descriptor::new(OCI_MANIFEST, Digest::sha256_of(content), content.len() as u64)
    }

    #[test]
    fn moving_a_tag_replaces_its_entry_in_place() {
        let mut index = IndexFile::empty();
        index.set_tag(&tag("a"), &manifest_descriptor(b"one"));
        index.set_tag(&tag("b"), &manifest_descriptor(b"two"));
        index.set_tag(&tag("a"), &manifest_descriptor(b"three"));
        assert_eq!(index.entries_named("a"), 1);
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(ref_name(&index.manifests[0]), Some("a"), "a keeps its place");
        let moved = index.find_tag(&tag("a")).unwrap().unwrap();
        assert_eq!(moved.digest, Digest::sha256_of(b"three"));
        assert_eq!(moved.size, 5);
        assert_eq!(moved.media_type.as_deref(), Some(OCI_MANIFEST));
    }

    #[test]
    fn duplicate_names_from_other_tools_collapse_on_the_next_write() {
        let digest = Digest::sha256_of(b"x");
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[
                {{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1,"annotations":{{"{REF_NAME}":"v1"}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1,"annotations":{{"{REF_NAME}":"v1"}}}}
            ]}}"#
        );
        let mut index = IndexFile::parse(text.as_bytes()).unwrap();
        assert_eq!(index.tags(), vec![tag("v1")]);
        index.set_tag(&tag("v1"), &manifest_descriptor(b"y"));
        assert_eq!(index.entries_named("v1"), 1);
    }

    #[test]
    fn unknown_fields_and_untagged_entries_survive_a_rewrite() {
        let digest = Digest::sha256_of(b"x");
        let text = format!(
            r#"{{"schemaVersion":2,"annotations":{{"k":"v"}},"manifests":[
                {{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1,"data":"eA=="}}
            ]}}"#
        );
        let mut index = IndexFile::parse(text.as_bytes()).unwrap();
        index.set_tag(&tag("v1"), &manifest_descriptor(b"y"));
        let written: Value = serde_json::from_slice(&index.to_bytes().unwrap()).unwrap();
        assert_eq!(written["annotations"]["k"], "v");
        assert_eq!(written["manifests"][0]["data"], "eA==");
        assert_eq!(written["manifests"][1]["annotations"][REF_NAME], "v1");
        assert_eq!(index.media_type_of(&digest).as_deref(), Some(OCI_MANIFEST));
    }

    #[test]
    fn removing_a_tag_or_a_digest_keeps_the_other_entries() {
        let mut index = IndexFile::empty();
        index.set_tag(&tag("a"), &manifest_descriptor(b"one"));
        index.set_tag(&tag("b"), &manifest_descriptor(b"one"));
        index.set_tag(&tag("c"), &manifest_descriptor(b"two"));
        assert!(index.remove_tag(&tag("a")));
        assert!(!index.remove_tag(&tag("a")));
        assert_eq!(index.tags(), vec![tag("b"), tag("c")]);
        assert!(index.remove_digest(&Digest::sha256_of(b"two")));
        assert_eq!(index.tags(), vec![tag("b")]);
        assert_eq!(index.root_digests().unwrap(), vec![Digest::sha256_of(b"one")]);
    }

    #[test]
    fn names_that_are_not_tags_are_not_listed() {
        let digest = Digest::sha256_of(b"x");
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[
                {{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1,"annotations":{{"{REF_NAME}":"example.com/app:1"}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1,"annotations":{{"{REF_NAME}":"1.0"}}}}
            ]}}"#
        );
        assert_eq!(IndexFile::parse(text.as_bytes()).unwrap().tags(), vec![tag("1.0")]);
    }

    #[test]
    fn rejects_malformed_indexes() {
        assert!(IndexFile::parse(b"{").is_err());
        assert!(IndexFile::parse(br#"{"schemaVersion":1,"manifests":[]}"#).is_err());
        let bad_digest = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"md5:00","size":1,"annotations":{{"{REF_NAME}":"v1"}}}}]}}"#
        );
        let index = IndexFile::parse(bad_digest.as_bytes()).unwrap();
        assert!(index.find_tag(&tag("v1")).is_err());
    }
}
