//! Value types that can only hold valid values: once built, no later layer checks them again.
//!
//! Messages follow the wording existing clients of the seed API display.

use crate::error::DomainError;

/// The longest event name, in characters.
pub const EVENT_NAME_MAX_CHARS: usize = 200;
/// The longest payment reference, in characters.
pub const PAYMENT_REFERENCE_MAX_CHARS: usize = 64;

fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Validation {
        field,
        message: message.into(),
    }
}

/// An event name: at most 200 characters, not all white space, no control characters; kept
/// without its surrounding white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName(String);

impl EventName {
    /// Validates and trims a name. The length is that of the name as sent, so that a name
    /// the API's published schema calls too long is refused, whatever white space it carries.
    ///
    /// # Errors
    /// [`DomainError::Validation`] on field `name` when the name is blank, longer than 200
    /// characters, or has control characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid("name", "The name field is required."));
        }
        if raw.chars().count() > EVENT_NAME_MAX_CHARS {
            return Err(invalid(
                "name",
                format!(
                    "The name field must not be greater than {EVENT_NAME_MAX_CHARS} characters."
                ),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                "The name field must not contain control characters.",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The number of tickets of an event: at least 1, and small enough for the stores' 32-bit
/// counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Capacity(i32);

impl Capacity {
    /// Validates a capacity.
    ///
    /// # Errors
    /// [`DomainError::Validation`] on field `capacity` when it is below 1 or above `i32::MAX`.
    pub fn new(raw: i64) -> Result<Self, DomainError> {
        if raw < 1 {
            return Err(invalid(
                "capacity",
                "The capacity field must be at least 1.",
            ));
        }
        i32::try_from(raw).map(Self).map_err(|_| {
            invalid(
                "capacity",
                format!("The capacity field must not be greater than {}.", i32::MAX),
            )
        })
    }

    /// The capacity.
    pub const fn get(self) -> i32 {
        self.0
    }
}

/// A payment reference recorded with a purchase: at most 64 characters, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentReference(String);

impl PaymentReference {
    /// Validates a payment reference. An empty string means "none", as the seed API treated it.
    ///
    /// # Errors
    /// [`DomainError::Validation`] on field `payment_reference` when longer than 64 characters
    /// or when it has control characters (PostgreSQL cannot store a NUL in text, and nothing
    /// downstream of a purchase should receive line breaks or escapes).
    pub fn parse(raw: &str) -> Result<Option<Self>, DomainError> {
        if raw.chars().count() > PAYMENT_REFERENCE_MAX_CHARS {
            return Err(invalid(
                "payment_reference",
                format!(
                    "The payment reference must not be greater than {PAYMENT_REFERENCE_MAX_CHARS} characters."
                ),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(invalid(
                "payment_reference",
                "The payment reference must not contain control characters.",
            ));
        }
        Ok((!raw.is_empty()).then(|| Self(raw.to_owned())))
    }

    /// The reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment reference is a secret of the shop's payment provider: never in a log line.
impl std::fmt::Debug for PaymentReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentReference(***)")
    }
}

/// The default of the largest number of tickets one reservation may hold.
pub const DEFAULT_MAX_TICKETS_PER_RESERVATION: u32 = 10;

/// How many tickets one reservation holds: at least 1, at most the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u32);

impl Quantity {
    /// One ticket: what a reserve without a quantity asks for.
    pub const ONE: Self = Self(1);

    /// Validates a quantity against `max` (the configured `MAX_TICKETS_PER_RESERVATION`).
    ///
    /// # Errors
    /// [`DomainError::Validation`] on field `quantity` when below 1 or above `max`.
    pub fn new(raw: i64, max: u32) -> Result<Self, DomainError> {
        if raw < 1 {
            return Err(invalid(
                "quantity",
                "The quantity field must be at least 1.",
            ));
        }
        match u32::try_from(raw) {
            Ok(q) if q <= max => Ok(Self(q)),
            _ => Err(invalid(
                "quantity",
                format!("The quantity field must not be greater than {max}."),
            )),
        }
    }

    /// The number of tickets.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The number of tickets, for counter arithmetic.
    pub fn tickets(self) -> i64 {
        i64::from(self.0)
    }
}

/// The longest customer reference, in characters.
pub const CUSTOMER_MAX_CHARS: usize = 128;

/// The shop's own reference for the customer a reserve is for (an account id), used only to
/// apply the per-customer limit. It is whatever the shop sends: not an authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Customer(String);

impl Customer {
    /// Validates a customer reference: 1 to 128 characters, no control characters. It is kept
    /// exactly as sent (not trimmed), since it names an account.
    ///
    /// # Errors
    /// [`DomainError::Validation`] on field `customer`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(invalid(
                "customer",
                "The customer field must be at least 1 character.",
            ));
        }
        if chars > CUSTOMER_MAX_CHARS {
            return Err(invalid(
                "customer",
                format!(
                    "The customer field must not be greater than {CUSTOMER_MAX_CHARS} characters."
                ),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(invalid(
                "customer",
                "The customer field must not contain control characters.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn field_of(err: DomainError) -> &'static str {
        match err {
            DomainError::Validation { field, .. } => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn event_name_is_trimmed() {
        assert_eq!(
            EventName::parse("  Concert ").map(|n| n.as_str().to_owned()),
            Ok("Concert".into())
        );
    }

    #[test]
    fn event_name_fails_when_blank_longer_than_200_chars_or_with_controls() {
        assert_eq!(field_of(EventName::parse("   ").unwrap_err()), "name");
        assert!(EventName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            field_of(EventName::parse(&"é".repeat(201)).unwrap_err()),
            "name"
        );
        // Counted as sent: 199 characters and two spaces are too many.
        assert!(EventName::parse(&format!(" {} ", "x".repeat(199))).is_err());
        for bad in ["a\tb", "line\n", "\u{7f}x", "\u{85}"] {
            assert_eq!(
                field_of(EventName::parse(bad).unwrap_err()),
                "name",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn capacity_fails_below_one_or_above_i32_max() {
        assert_eq!(Capacity::new(1).map(Capacity::get), Ok(1));
        assert_eq!(field_of(Capacity::new(0).unwrap_err()), "capacity");
        assert_eq!(field_of(Capacity::new(-5).unwrap_err()), "capacity");
        assert_eq!(
            Capacity::new(i64::from(i32::MAX)).map(Capacity::get),
            Ok(i32::MAX)
        );
        assert_eq!(
            field_of(Capacity::new(i64::from(i32::MAX) + 1).unwrap_err()),
            "capacity"
        );
    }

    #[test]
    fn payment_reference_fails_with_the_seed_message_when_longer_than_64_chars() {
        let err = PaymentReference::parse(&"x".repeat(65)).unwrap_err();
        assert_eq!(
            err,
            DomainError::Validation {
                field: "payment_reference",
                message: "The payment reference must not be greater than 64 characters.".into(),
            }
        );
        assert_eq!(PaymentReference::parse(""), Ok(None));
    }

    #[test]
    fn payment_reference_fails_when_it_has_control_characters() {
        for bad in ["\u{0}", "pay\n1", "pay\u{7f}", "\u{85}x"] {
            assert_eq!(
                PaymentReference::parse(bad),
                Err(DomainError::Validation {
                    field: "payment_reference",
                    message: "The payment reference must not contain control characters.".into(),
                }),
                "{bad:?}"
            );
        }
        assert!(PaymentReference::parse("pay_8f2k é").is_ok());
    }

    #[test]
    fn payment_reference_is_not_shown_by_debug() {
        let shown = format!("{:?}", PaymentReference::parse("pay_secret").unwrap());
        assert!(!shown.contains("pay_secret"), "{shown}");
    }

    #[test]
    fn quantity_is_accepted_from_1_to_the_maximum() {
        assert_eq!(Quantity::new(1, 10).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::new(10, 10).map(Quantity::get), Ok(10));
        assert_eq!(
            Quantity::new(11, 10),
            Err(DomainError::Validation {
                field: "quantity",
                message: "The quantity field must not be greater than 10.".into()
            })
        );
        assert_eq!(field_of(Quantity::new(0, 10).unwrap_err()), "quantity");
        assert_eq!(field_of(Quantity::new(-3, 10).unwrap_err()), "quantity");
        assert_eq!(
            field_of(Quantity::new(i64::MAX, u32::MAX).unwrap_err()),
            "quantity"
        );
    }

    #[test]
    fn customer_is_kept_as_sent_and_refused_when_empty_too_long_or_with_controls() {
        assert_eq!(
            Customer::parse(" acct-7 ").map(|c| c.as_str().to_owned()),
            Ok(" acct-7 ".into())
        );
        assert!(Customer::parse(&"é".repeat(128)).is_ok());
        for bad in ["", "a\nb", "\u{0}"] {
            assert_eq!(
                field_of(Customer::parse(bad).unwrap_err()),
                "customer",
                "{bad:?}"
            );
        }
        assert_eq!(
            field_of(Customer::parse(&"é".repeat(129)).unwrap_err()),
            "customer"
        );
    }

    proptest! {
        #[test]
        fn payment_reference_is_accepted_exactly_up_to_64_chars(s in "\\PC{0,100}") {
            let n = s.chars().count();
            let parsed = PaymentReference::parse(&s);
            prop_assert_eq!(parsed.is_ok(), n <= 64);
            if let Ok(Some(r)) = parsed {
                prop_assert_eq!(r.as_str(), s.as_str());
            }
        }

        #[test]
        fn capacity_is_accepted_exactly_from_1_to_i32_max(raw in any::<i64>()) {
            prop_assert_eq!(Capacity::new(raw).is_ok(), (1..=i64::from(i32::MAX)).contains(&raw));
        }
    }
}
