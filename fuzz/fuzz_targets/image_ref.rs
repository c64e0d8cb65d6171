//! The image references of `ocisync copy SRC DST` (`[docker://][host[:port]/]name[:tag][@digest]`).
//!
//! Properties: the host is `host[:port]` alone (it becomes the registry URL
//! `https://HOST`: no user, path, query or fragment can ride along); a parsed reference
//! written out again parses to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok((host, repository, target)) = ocisync::fuzzing::image_ref(text) else { return };
    let url = url::Url::parse(&format!("https://{host}")).expect("the host makes a URL");
    assert_eq!(url.username(), "", "{text:?}");
    assert_eq!(url.password(), None, "{text:?}");
    assert_eq!(url.path(), "/", "{text:?}");
    assert_eq!((url.query(), url.fragment()), (None, None), "{text:?}");
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap()),
        None => url.host_str().unwrap().to_owned(),
    };
    // `:443` is https's own port, which the URL leaves out.
    let reads_as_written = host.eq_ignore_ascii_case(&authority) || host.eq_ignore_ascii_case(&format!("{authority}:443"));
    assert!(reads_as_written, "{host} reads as {authority}");
    let written = format!("{host}/{repository}{target}");
    assert_eq!(
        ocisync::fuzzing::image_ref(&written),
        Ok((host.clone(), repository.clone(), target.clone())),
        "{text:?} written as {written:?}"
    );
});
