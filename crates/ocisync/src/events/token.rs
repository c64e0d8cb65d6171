//! The bearer token a registry's notifications must carry.
//!
//! Only the token's SHA-256 is kept, and a presented token is hashed and compared byte
//! for byte without stopping at the first difference: neither the time taken nor an
//! early exit tells how much of a guess was right, or how long the token is.

use hyper::header::HeaderValue;
use ocisync_registry::Secret;
use sha2::{Digest as _, Sha256};

pub struct NotificationToken {
    sha256: [u8; 32],
}

impl NotificationToken {
    pub fn new(token: &Secret) -> NotificationToken {
        NotificationToken {
            sha256: Sha256::digest(token.expose().as_bytes()).into(),
        }
    }

    /// Whether an `Authorization` header carries `Bearer <this token>`.
    pub fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(presented) = authorization.and_then(|value| bearer_token(value.as_bytes())) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(presented).into();
        let difference = presented
            .iter()
            .zip(self.sha256.iter())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

/// The token of `Bearer <token>` (the scheme in any case, RFC 9110 §11.1).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        let token = NotificationToken::new(&Secret::new("0123456789abcdef"));
        let admits = |value: &str| token.admits(Some(&HeaderValue::from_str(value).unwrap()));
        assert!(admits("Bearer 0123456789abcdef"));
        assert!(admits("bearer 0123456789abcdef"));
        assert!(!admits("Bearer 0123456789abcdeF"));
        assert!(!admits("Bearer 0123456789abcde"));
        assert!(!admits("Bearer 0123456789abcdef0"));
        assert!(!admits("Basic 0123456789abcdef"));
        assert!(!admits("Bearer "));
        assert!(!admits("0123456789abcdef"));
        assert!(!token.admits(None));
    }
}
