//! Idempotency keys: a client that retries a request with the same key gets the first answer
//! again, never a second effect (the semantics of the IETF `Idempotency-Key` draft, as payment
//! APIs offer it).
//!
//! A key is claimed, and the first answer stored, in the same transaction as the request's
//! effect: either both are committed or neither is. What an answer looks like is the HTTP
//! layer's business; the domain stores it as given ([`StoredAnswer`]).

use std::fmt;

use crate::error::DomainError;

/// The longest idempotency key, in characters.
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

/// A client's idempotency key: 1 to 255 visible ASCII characters (`!` to `~`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a key.
    ///
    /// # Errors
    /// [`DomainError::Validation`] on field `idempotency_key`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let visible = raw.bytes().all(|b| b.is_ascii_graphic());
        if raw.is_empty() || raw.len() > IDEMPOTENCY_KEY_MAX_CHARS || !visible {
            return Err(DomainError::Validation {
                field: "idempotency_key",
                message: format!(
                    "The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters."
                ),
            });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    // Keys are chosen by clients and may carry anything: logs get their length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey(<{} chars>)", self.0.len())
    }
}

/// What identifies a request for idempotency: a digest of its method, path and body, made by the
/// layer that parsed it. Two requests with equal fingerprints are the same request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub String);

/// A request's key and fingerprint, to claim in the request's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// The client's key.
    pub key: IdempotencyKey,
    /// The request it was sent with.
    pub fingerprint: Fingerprint,
}

/// The first answer to a request, as the HTTP layer rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body, exactly as sent.
    pub body: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key was free (or its record had expired): it is now this transaction's.
    Claimed,
    /// The key was used by a committed request: its fingerprint and first answer.
    Existing {
        /// The fingerprint of the first request.
        fingerprint: Fingerprint,
        /// The first answer.
        answer: StoredAnswer,
    },
}

/// Renders the answer a request gets, so it can be stored with the request's effect.
pub trait RenderAnswer: Send + Sync {
    /// The answer to `outcome` of a request of `kind`.
    fn render(
        &self,
        kind: crate::command::OperationKind,
        outcome: &Result<crate::Reservation, DomainError>,
    ) -> StoredAnswer;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_1_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("8e03978e-40d5-43e8-bc93-6894a57f9324").is_ok());
        assert!(IdempotencyKey::parse("!~\"{}").is_ok());
        for bad in ["", " ", "a b", "é", "tab\there", "nl\n"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn a_key_is_not_printed_in_debug_output() {
        let key = IdempotencyKey::parse("secret-ish").unwrap_or_else(|_| unreachable!());
        assert_eq!(format!("{key:?}"), "IdempotencyKey(<10 chars>)");
    }
}
