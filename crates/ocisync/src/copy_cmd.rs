//! `ocisync copy SRC DST`: one image or one repository, with the sync engine, for scripts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use ocisync_engine::{
    copy_one, run_task, CopyOptions, ImageReference, Report, RetryPolicy, Retrying, SyncReport, SyncTask,
};
use ocisync_oci::Reference;
use ocisync_registry::{Credentials, RegistryOptions, RegistryStore, RequestLimit, Secret};

use crate::cli::CopyArgs;
use crate::config::DEFAULT_MAX_REQUESTS_IN_FLIGHT;
use crate::image_ref::{ImageRef, Target};
use crate::passes::{write_report, Timing};
use crate::quota;
use crate::summary;

/// How to reach one side of the copy.
pub struct Access<'a> {
    pub plain_http: bool,
    pub tls_verify: bool,
    pub ca_file: Option<&'a PathBuf>,
    pub username: Option<&'a String>,
    pub password_env: Option<&'a String>,
    pub password_file: Option<&'a PathBuf>,
}

pub async fn run_copy(args: &CopyArgs) -> anyhow::Result<Report> {
    let source: ImageRef = args.source.parse().map_err(anyhow::Error::msg).context("source")?;
    let destination: ImageRef = args
        .destination
        .parse()
        .map_err(anyhow::Error::msg)
        .context("destination")?;
    // One image: (source reference, destination reference); a whole repository: None.
    let single = match (&source.target, &destination.target) {
        (Target::Repository, Target::Repository) => None,
        (Target::Repository, _) => bail!("a whole repository is copied to a repository; drop the destination tag"),
        (_, Target::Digest(_)) => bail!("the destination takes a tag or nothing, not a digest"),
        (Target::Tag(tag), Target::Repository) => Some((Reference::Tag(tag.clone()), Reference::Tag(tag.clone()))),
        (Target::Digest(digest), Target::Repository) => {
            Some((Reference::Digest(digest.clone()), Reference::Digest(digest.clone())))
        }
        (Target::Tag(tag), Target::Tag(to)) => Some((Reference::Tag(tag.clone()), Reference::Tag(to.clone()))),
        (Target::Digest(digest), Target::Tag(to)) => {
            Some((Reference::Digest(digest.clone()), Reference::Tag(to.clone())))
        }
    };
    let source_store = store(&source.host, &args.source_access.access()).context("source")?;
    let destination_store = store(&destination.host, &args.destination_access.access()).context("destination")?;

    if let Some(path) = &args.report {
        crate::report_path::check(path)?;
    }
    let timing = Timing::start();
    let options = CopyOptions::default();
    let repository = match single {
        None => {
            let task = SyncTask::unfiltered(source.repository.clone(), destination.repository.clone(), None);
            run_task(&source_store, &destination_store, task, &options).await
        }
        Some((source_reference, destination_reference)) => {
            let from = ImageReference {
                repository: source.repository.clone(),
                reference: source_reference,
            };
            let to = ImageReference {
                repository: destination.repository.clone(),
                reference: destination_reference,
            };
            // A digest copied without a tag is reported by its digest alone.
            copy_one(&source_store, &destination_store, &from, &to, &options).await
        }
    };
    let report = Report {
        syncs: vec![SyncReport {
            repositories: vec![repository],
            rate_limits: [
                quota::rate_limit_use("source", source_store.inner()),
                quota::rate_limit_use("destination", destination_store.inner()),
            ]
            .into_iter()
            .flatten()
            .collect(),
            duration_seconds: timing.elapsed().as_secs_f64(),
            ..SyncReport::new("copy", &source.host, &destination.host)
        }],
    };
    if let Some(path) = &args.report {
        write_report(path, &report, timing, false)?;
    }
    print!("{}", summary::render(&report, timing.elapsed()));
    Ok(report)
}

fn store(host: &str, access: &Access<'_>) -> anyhow::Result<Retrying<RegistryStore>> {
    let scheme = if access.plain_http { "http" } else { "https" };
    let mut options = RegistryOptions::new(format!("{scheme}://{host}"));
    options.tls_verify = access.tls_verify;
    options.ca_file = access.ca_file.cloned();
    options.credentials = credentials(access)?;
    options.request_limit = Some(RequestLimit::new(DEFAULT_MAX_REQUESTS_IN_FLIGHT));
    Ok(Retrying::new(RegistryStore::new(options)?, RetryPolicy::default()))
}

fn credentials(access: &Access<'_>) -> anyhow::Result<Option<Credentials>> {
    let password = match (access.password_env, access.password_file) {
        (Some(_), Some(_)) => bail!("give a password variable or a password file, not both"),
        (Some(variable), None) => {
            Some(Secret::new(std::env::var(variable).with_context(|| {
                format!("environment variable {variable} is not set")
            })?))
        }
        (None, Some(path)) => Some(read_password_file(path)?),
        (None, None) => None,
    };
    match (access.username, password) {
        (Some(username), Some(password)) => Ok(Some(Credentials::password(username.clone(), password))),
        (Some(_), None) => bail!("a username needs a password variable or file"),
        (None, Some(_)) => bail!("a password is given but no username"),
        (None, None) => Ok(None),
    }
}

fn read_password_file(path: &Path) -> anyhow::Result<Secret> {
    let text = ocisync_registry::read_small_text(path, ocisync_registry::SMALL_FILE_LIMIT)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Secret::new(text.trim_end_matches(['\r', '\n'])))
}
