//! The operators' bearer token.

use actix_web::http::header;
use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The operators' bearer token (`ADMIN_TOKEN`). `{:?}` never shows it, so a configuration or
/// state printed for debugging does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// The token; `None` for an empty one (which would let an empty bearer in).
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        (!token.is_empty()).then_some(Self(token))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// Accepts the request only with `Authorization: Bearer <token>` equal to `expected`. The
/// comparison takes the same time wherever the first difference is, so the token cannot be
/// guessed byte by byte from response times (only its length can leak).
pub(crate) fn require_admin(
    req: &HttpRequest,
    expected: Option<&AdminToken>,
) -> Result<(), ApiError> {
    let expected = expected.ok_or(ApiError::Unauthorized)?.expose();
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn token() -> Option<AdminToken> {
        AdminToken::new("s3cret")
    }

    fn with_auth(value: &str) -> HttpRequest {
        TestRequest::default()
            .insert_header((header::AUTHORIZATION, value))
            .to_http_request()
    }

    #[test]
    fn require_admin_accepts_only_the_exact_bearer_token() {
        assert!(require_admin(&with_auth("Bearer s3cret"), token().as_ref()).is_ok());
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret!",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
        ] {
            assert!(
                require_admin(&with_auth(wrong), token().as_ref()).is_err(),
                "{wrong}"
            );
        }
        assert!(
            require_admin(&TestRequest::default().to_http_request(), token().as_ref()).is_err()
        );
    }

    #[test]
    fn require_admin_refuses_everyone_without_a_configured_token() {
        assert!(require_admin(&with_auth("Bearer "), None).is_err());
        assert!(require_admin(&with_auth("Bearer anything"), None).is_err());
    }

    #[test]
    fn an_admin_token_is_never_shown_by_debug_and_never_empty() {
        let token = AdminToken::new("s3cret-token");
        assert_eq!(format!("{token:?}"), "Some(AdminToken(***))");
        assert_eq!(AdminToken::new(""), None);
    }
}
