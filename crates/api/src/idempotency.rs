//! The `Idempotency-Key` header: reading it, fingerprinting the request it came with, and
//! refusing a second request with the same key while the first is being served here.
//!
//! The key is the whole header value (1 to 255 visible ASCII characters), as payment APIs
//! take it. The fingerprint is a SHA-256 of the method, the path and the body in canonical
//! form (keys sorted, no white space; no body and `{}` are the same), so a retry that
//! re-serializes its JSON still matches.

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::HttpRequest;
use domain::{Fingerprint, IdempotencyClaim, IdempotencyKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The answer header that marks a replayed first answer.
pub const REPLAYED: &str = "Idempotent-Replayed";

/// The request's key, if it sent one.
pub(crate) fn key_of(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = req.headers().get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid(
            "idempotency_key",
            "Send one Idempotency-Key header, not several.",
        ));
    }
    let text = value.to_str().unwrap_or("\u{7f}");
    Ok(Some(IdempotencyKey::parse(text)?))
}

/// The fingerprint of a request: method, path and canonical body.
pub(crate) fn fingerprint(req: &HttpRequest, body: Option<&Map<String, Value>>) -> Fingerprint {
    let empty = Map::new();
    // serde_json's map keeps keys sorted, so this is canonical.
    let canonical = Value::Object(body.unwrap_or(&empty).clone()).to_string();
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(req.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    Fingerprint(hex)
}

/// The keys of the requests this server is serving now.
#[derive(Debug, Default)]
pub struct KeysInUse {
    keys: Mutex<HashSet<String>>,
}

/// A key held while its request is served; released when dropped, whatever happens.
#[derive(Debug)]
pub(crate) struct Held {
    registry: Arc<KeysInUse>,
    key: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.registry
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl KeysInUse {
    /// Takes `claim`'s key for one request, or refuses while another request has it.
    pub(crate) fn hold(self: &Arc<Self>, claim: &IdempotencyClaim) -> Result<Held, ApiError> {
        let key = claim.key.as_str().to_owned();
        let fresh = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone());
        if fresh {
            Ok(Held {
                registry: Arc::clone(self),
                key,
            })
        } else {
            Err(ApiError::IdempotencyKeyInProgress)
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use serde_json::json;

    use super::*;

    fn object(v: &Value) -> Option<&Map<String, Value>> {
        v.as_object()
    }

    #[test]
    fn the_fingerprint_ignores_key_order_and_spacing_but_not_content_or_path() {
        let req = TestRequest::post()
            .uri("/api/events/1/reserve")
            .to_http_request();
        let a = json!({"quantity": 2, "customer": "x"});
        let b: Value = serde_json::from_str(r#"{ "customer" : "x", "quantity":2 }"#).unwrap();
        assert_eq!(fingerprint(&req, object(&a)), fingerprint(&req, object(&b)));
        assert_eq!(
            fingerprint(&req, None),
            fingerprint(&req, object(&json!({})))
        );
        assert_ne!(
            fingerprint(&req, object(&a)),
            fingerprint(&req, object(&json!({"quantity": 3, "customer": "x"})))
        );
        let other = TestRequest::post()
            .uri("/api/events/2/reserve")
            .to_http_request();
        assert_ne!(fingerprint(&req, None), fingerprint(&other, None));
        assert_eq!(fingerprint(&req, None).0.len(), 64);
    }

    #[test]
    fn a_key_is_read_whole_and_refused_when_empty_long_repeated_or_not_visible_ascii() {
        let with = |value: &str| {
            TestRequest::post()
                .insert_header((HEADER, value))
                .to_http_request()
        };
        assert_eq!(
            key_of(&with("\"8e03978e\""))
                .unwrap()
                .map(|k| k.as_str().to_owned()),
            Some("\"8e03978e\"".into())
        );
        assert_eq!(
            key_of(&TestRequest::post().to_http_request()).unwrap(),
            None
        );
        for bad in ["", "a b", &"k".repeat(256)] {
            assert!(key_of(&with(bad)).is_err(), "{bad:?}");
        }
        let twice = TestRequest::post()
            .append_header((HEADER, "a"))
            .append_header((HEADER, "b"))
            .to_http_request();
        assert!(key_of(&twice).is_err());
    }

    #[test]
    fn a_key_is_held_by_one_request_at_a_time() {
        let registry = Arc::new(KeysInUse::default());
        let claim = IdempotencyClaim {
            key: IdempotencyKey::parse("k").unwrap(),
            fingerprint: Fingerprint("f".into()),
        };
        let held = registry.hold(&claim).unwrap();
        assert_eq!(
            registry.hold(&claim).unwrap_err(),
            ApiError::IdempotencyKeyInProgress
        );
        drop(held);
        assert!(registry.hold(&claim).is_ok());
    }
}
