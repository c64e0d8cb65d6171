//! `Export`: [`super::Mirror`]'s counterpart whose destination is a layout directory:
//! an upstream registry, and a [`Workdir`] whose config exports it into `disk/`.

use std::path::PathBuf;

use ocisync_testkit::TestRegistry;

use super::Workdir;

/// The one sync of [`Export::start`]: everything of `upstream` into the layout.
const ONE_EXPORT: &str = "  - from: upstream\n    to: disk\n";

/// A config of the upstream (`{upstream}`, filled in by [`Export::write_config`]), the
/// layout `disk` (relative to the config) and `syncs` (the YAML list under `syncs:`).
pub fn export_config_with_syncs(syncs: &str) -> String {
    format!("version: 1\nregistries:\n  upstream:\n    urls: [\"{{upstream}}\"]\n  disk:\n    layout: disk\nsyncs:\n{syncs}")
}

pub struct Export {
    pub upstream: TestRegistry,
    work: Workdir,
}

impl Export {
    /// An empty upstream and the config exporting all of it.
    pub fn start() -> Export {
        let world = Export {
            upstream: TestRegistry::start(),
            work: Workdir::new(),
        };
        world.write_config(&export_config_with_syncs(ONE_EXPORT));
        world
    }

    /// Replaces the config with `yaml`, `{upstream}` filled in with the registry's url.
    pub fn write_config(&self, yaml: &str) {
        self.work
            .write_config_filled(yaml, &[("{upstream}", &self.upstream.url())]);
    }

    /// [`Export::write_config`] into the file `name`, for a second writer of the
    /// layout; returns its path.
    pub fn write_other_config(&self, name: &str, yaml: &str) -> PathBuf {
        self.work
            .write_other_config(name, yaml, &[("{upstream}", &self.upstream.url())])
    }

    /// The layout directory the config names (created by the first export).
    pub fn layout(&self) -> PathBuf {
        self.dir().join("disk")
    }
}

impl std::ops::Deref for Export {
    type Target = Workdir;

    fn deref(&self) -> &Workdir {
        &self.work
    }
}
