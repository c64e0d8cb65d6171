//! `max_blob_size`: an image is looked over whole before any byte of it moves, so
//! one that references a blob larger than the limit is skipped, not half copied.

use ocisync_oci::media_type::is_non_distributable;
use ocisync_oci::{Descriptor, ManifestContent, Store};

use super::context::Pass;
use super::image::MAX_DEPTH;
use super::read_ahead::ReadAhead;
use crate::error::CopyError;
use crate::plan::SyncTask;

impl<S: Store, D: Store> Pass<'_, S, D> {
    /// The first blob `content` references, through every child manifest, whose
    /// declared size is over `limit`; `None` when all fit. Non-distributable layers are
    /// not copied, so they do not count. Children are read from the source (and kept
    /// in `read_ahead`), whether or not the destination has them: the limit is about
    /// what the image references.
    pub(super) async fn blob_over_limit(
        &self,
        task: &SyncTask,
        content: &ManifestContent,
        limit: u64,
        depth: usize,
        read_ahead: &mut ReadAhead,
    ) -> Result<Option<Descriptor>, CopyError> {
        match content {
            ManifestContent::Image { config, layers, .. } => Ok(std::iter::once(config)
                .chain(layers)
                .filter(|blob| !is_non_distributable(&blob.media_type))
                .find(|blob| blob.size > limit)
                .cloned()),
            ManifestContent::Index { manifests } => {
                for child in manifests {
                    if depth >= MAX_DEPTH {
                        // The copy reports the nesting; nothing more to look at here.
                        return Ok(None);
                    }
                    let manifest = match read_ahead.get(&child.digest) {
                        Some(manifest) => manifest.clone(),
                        None => self.read_manifest(&task.source, child).await?,
                    };
                    let child_content = manifest.content().map_err(|source| CopyError::Malformed {
                        digest: manifest.digest.clone(),
                        source,
                    })?;
                    read_ahead.insert(child.digest.clone(), manifest);
                    let found =
                        Box::pin(self.blob_over_limit(task, &child_content, limit, depth + 1, read_ahead)).await?;
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                Ok(None)
            }
            ManifestContent::Schema1 => Ok(None),
        }
    }
}
