//! `Mirror`: one call sets up a test's world (an upstream and a mirror registry, a
//! directory, a config between them) and runs the binary in it.

use ocisync_testkit::TestRegistry;

use super::Workdir;

/// The registries every config of the fixture names; `{upstream}` and `{mirror}` stand
/// for their urls until [`Mirror::write_config`] fills them in.
const REGISTRIES: &str =
    "version: 1\nregistries:\n  upstream:\n    urls: [\"{upstream}\"]\n  mirror:\n    urls: [\"{mirror}\"]\n";

/// The one sync most tests run: everything of `upstream` into `mirror`.
const ONE_SYNC: &str = "  - from: upstream\n    to: mirror\n";

/// The config [`Mirror::start`] writes: everything of `upstream` into `mirror`.
pub fn one_sync_config() -> String {
    config_with_syncs(ONE_SYNC)
}

/// A config of the two registries and `syncs` (the YAML list under `syncs:`, items
/// indented by two spaces).
pub fn config_with_syncs(syncs: &str) -> String {
    format!("{REGISTRIES}syncs:\n{syncs}")
}

/// The one-sync config with `defaults` (lines under `defaults:`, indented by two spaces).
pub fn config_with_defaults(defaults: &str) -> String {
    format!("{REGISTRIES}defaults:\n{defaults}\nsyncs:\n{ONE_SYNC}")
}

/// The one-sync config with settings of each registry (lines under its entry, indented
/// by four spaces; empty for none): a `bandwidth` of the upstream, a `ca_file` of the
/// mirror.
pub fn config_with_registry_lines(upstream_lines: &str, mirror_lines: &str) -> String {
    format!(
        "version: 1\nregistries:\n  upstream:\n    urls: [\"{{upstream}}\"]\n{upstream_lines}  mirror:\n    urls: [\"{{mirror}}\"]\n{mirror_lines}syncs:\n{ONE_SYNC}"
    )
}

/// Two registries started on loopback, and a [`Workdir`] whose config syncs one into the
/// other (its methods run the binary there).
pub struct Mirror {
    pub upstream: TestRegistry,
    pub mirror: TestRegistry,
    work: Workdir,
}

impl Mirror {
    /// Two empty registries and the one-sync config between them.
    pub fn start() -> Mirror {
        Mirror::between(TestRegistry::start(), TestRegistry::start())
    }

    /// [`Mirror::start`] with registries the test built (with TLS, a password, ...).
    pub fn between(upstream: TestRegistry, mirror: TestRegistry) -> Mirror {
        let world = Mirror {
            upstream,
            mirror,
            work: Workdir::new(),
        };
        world.write_config(&one_sync_config());
        world
    }

    /// Replaces the config with `yaml`, `{upstream}` and `{mirror}` filled in with the
    /// registries' urls.
    pub fn write_config(&self, yaml: &str) {
        self.write_config_via(yaml, &[]);
    }

    /// [`Mirror::write_config`], each `(placeholder, value)` of `addresses` filled in
    /// first: `("{upstream}", proxy_url)` puts a proxy in front of the upstream.
    pub fn write_config_via(&self, yaml: &str, addresses: &[(&str, &str)]) {
        let registries = [("{upstream}", self.upstream.url()), ("{mirror}", self.mirror.url())];
        let registries = registries.iter().map(|(placeholder, url)| (*placeholder, url.as_str()));
        let addresses: Vec<(&str, &str)> = addresses.iter().copied().chain(registries).collect();
        self.work.write_config_filled(yaml, &addresses);
    }
}

impl std::ops::Deref for Mirror {
    type Target = Workdir;

    fn deref(&self) -> &Workdir {
        &self.work
    }
}
