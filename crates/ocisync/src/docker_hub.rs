//! Docker Hub's conventions: the names people write for it, and `library/` for
//! one-component repository names, as the docker CLI applies them.

/// The API host every Docker Hub name reaches.
pub const HUB_API_HOST: &str = "registry-1.docker.io";

/// Names people write for Docker Hub (docker's config.json stores `index.docker.io`).
const HUB_HOSTS: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Whether `host` (without a port, any case) is one of Docker Hub's names.
pub fn is_hub_host(host: &str) -> bool {
    HUB_HOSTS.iter().any(|hub| hub.eq_ignore_ascii_case(host))
}

/// `url` moved to Hub's API host when its host is one of Hub's names (and it names no
/// port): `https://docker.io` → `https://registry-1.docker.io`. `None` for other registries.
pub fn hub_api_url(url: &url::Url) -> Option<url::Url> {
    let host = url.host_str()?;
    if url.port().is_some() || !is_hub_host(host) {
        return None;
    }
    let mut api = url.clone();
    api.set_host(Some(HUB_API_HOST)).ok()?;
    Some(api)
}

/// A repository name as Docker Hub resolves it: `nginx` → `library/nginx`.
pub fn hub_repository(name: &str) -> String {
    if name.contains('/') {
        name.to_owned()
    } else {
        format!("library/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_and_library_prefix() {
        for host in [
            "docker.io",
            "INDEX.docker.io",
            "registry-1.docker.io",
            "registry.hub.docker.com",
        ] {
            assert!(is_hub_host(host), "{host}");
        }
        for host in ["ghcr.io", "docker.io.example.com", "localhost"] {
            assert!(!is_hub_host(host), "{host}");
        }
        assert_eq!(hub_repository("nginx"), "library/nginx");
        assert_eq!(hub_repository("library/nginx"), "library/nginx");
        assert_eq!(hub_repository("bitnami/redis"), "bitnami/redis");
    }

    #[test]
    fn hub_names_reach_the_api_host() {
        let api = |text: &str| hub_api_url(&url::Url::parse(text).unwrap()).map(String::from);
        for name in [
            "https://docker.io",
            "https://index.docker.io/",
            "https://Registry-1.Docker.io",
            "https://registry.hub.docker.com",
        ] {
            assert_eq!(api(name).as_deref(), Some("https://registry-1.docker.io/"), "{name}");
        }
        assert_eq!(api("https://ghcr.io"), None);
        assert_eq!(api("https://docker.io:5000"), None, "a port makes it another server");
    }
}
