//! The ticket types a request names: `ticket_type` and `quantity` for one line, or `lines`
//! (`[{"ticket_type", "quantity"}, ...]`) for several. Every problem is reported on its field.

use domain::inventory::MAX_LINES;
use domain::{LineRequest, Quantity, TicketTypeId};
use serde_json::{Map, Value};

use crate::body::{record, saturating_integer};
use crate::error::FieldErrors;

/// A ticket type id: a positive integer.
fn ticket_type(value: &Value) -> Option<TicketTypeId> {
    saturating_integer(value)
        .filter(|id| *id > 0 && *id < i64::MAX)
        .map(TicketTypeId::new)
}

/// A quantity from 1 to `max`, reported on `field`.
pub(crate) fn quantity(
    errors: &mut FieldErrors,
    field: &'static str,
    value: Option<&Value>,
    max: u32,
) -> Option<Quantity> {
    match value {
        None | Some(Value::Null) => Some(Quantity::ONE),
        Some(value) => {
            if let Some(raw) = saturating_integer(value) {
                Quantity::new(raw, max)
                    .map_err(|e| match e {
                        domain::DomainError::Validation { message, .. } => {
                            errors.entry(field).or_default().push(message);
                        }
                        other => record(errors, other),
                    })
                    .ok()
            } else {
                errors
                    .entry(field)
                    .or_default()
                    .push(format!("The {field} field must be an integer."));
                None
            }
        }
    }
}

/// The lines of `value`, a JSON array of 1 to 10 `{"ticket_type", "quantity"}` of distinct
/// types, each quantity from 1 to `max`.
pub(crate) fn lines(errors: &mut FieldErrors, value: &Value, max: u32) -> Option<Vec<LineRequest>> {
    const FIELD: &str = "lines";
    let Value::Array(items) = value else {
        errors.insert(FIELD, vec!["The lines field must be an array.".into()]);
        return None;
    };
    if items.is_empty() || items.len() > MAX_LINES {
        errors.insert(
            FIELD,
            vec![format!("The lines field must have 1 to {MAX_LINES} lines.")],
        );
        return None;
    }
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let Some(object) = item.as_object() else {
            errors.insert(
                FIELD,
                vec!["Each line must be an object with a ticket_type and a quantity.".into()],
            );
            return None;
        };
        let Some(id) = object.get("ticket_type").and_then(ticket_type) else {
            errors.insert(
                FIELD,
                vec!["Each line's ticket_type must be a ticket type id.".into()],
            );
            return None;
        };
        let n = quantity(errors, FIELD, object.get("quantity"), max)?;
        if parsed.iter().any(|l: &LineRequest| l.ticket_type == id) {
            errors.insert(
                FIELD,
                vec!["The lines must name distinct ticket types.".into()],
            );
            return None;
        }
        parsed.push(LineRequest {
            ticket_type: id,
            quantity: n,
        });
    }
    Some(parsed)
}

/// What a reserve body names.
#[derive(Debug)]
pub(crate) enum Named {
    /// No ticket type.
    Untyped,
    /// These lines, named by this field (`ticket_type` or `lines`).
    Typed(Vec<LineRequest>, &'static str),
}

/// What a reserve body asks for; `None` when it is wrong (the errors say how).
pub(crate) fn of_reserve(
    errors: &mut FieldErrors,
    body: &Map<String, Value>,
    max: u32,
) -> Option<Named> {
    let present = |key: &str| body.get(key).is_some_and(|v| !v.is_null());
    if present("lines") {
        if present("ticket_type") || present("quantity") {
            errors.insert(
                "lines",
                vec!["Send lines, or a ticket_type and a quantity, not both.".into()],
            );
            return None;
        }
        return lines(errors, &body["lines"], max).map(|l| Named::Typed(l, "lines"));
    }
    if present("ticket_type") {
        let Some(id) = body.get("ticket_type").and_then(ticket_type) else {
            errors.insert(
                "ticket_type",
                vec!["The ticket type field must be a ticket type id.".into()],
            );
            return None;
        };
        let n = quantity(errors, "quantity", body.get("quantity"), max)?;
        return Some(Named::Typed(
            vec![LineRequest {
                ticket_type: id,
                quantity: n,
            }],
            "ticket_type",
        ));
    }
    Some(Named::Untyped)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reserve_of(body: &Value) -> Result<Option<Vec<(i64, u32)>>, FieldErrors> {
        let mut errors = FieldErrors::new();
        let parsed = of_reserve(&mut errors, body.as_object().unwrap(), 10);
        match parsed {
            Some(Named::Typed(l, _)) if errors.is_empty() => Ok(Some(
                l.iter()
                    .map(|l| (l.ticket_type.get(), l.quantity.get()))
                    .collect(),
            )),
            Some(Named::Untyped) if errors.is_empty() => Ok(None),
            _ => Err(errors),
        }
    }

    #[test]
    fn a_reserve_names_one_type_or_lines_of_distinct_types() {
        assert_eq!(reserve_of(&json!({})), Ok(None));
        assert_eq!(reserve_of(&json!({"quantity": 2})), Ok(None));
        assert_eq!(
            reserve_of(&json!({"ticket_type": 4, "quantity": 2})),
            Ok(Some(vec![(4, 2)]))
        );
        assert_eq!(
            reserve_of(&json!({"ticket_type": 4})),
            Ok(Some(vec![(4, 1)]))
        );
        assert_eq!(
            reserve_of(&json!({"lines": [{"ticket_type": 1, "quantity": 2}, {"ticket_type": 2}]})),
            Ok(Some(vec![(1, 2), (2, 1)]))
        );
        for (bad, field) in [
            (json!({"ticket_type": "4"}), "ticket_type"),
            (json!({"ticket_type": 0}), "ticket_type"),
            (json!({"ticket_type": 4, "quantity": 11}), "quantity"),
            (json!({"lines": []}), "lines"),
            (json!({"lines": {}}), "lines"),
            (json!({"lines": [1]}), "lines"),
            (json!({"lines": [{"quantity": 1}]}), "lines"),
            (
                json!({"lines": [{"ticket_type": 1}, {"ticket_type": 1}]}),
                "lines",
            ),
            (
                json!({"lines": [{"ticket_type": 1, "quantity": 0}]}),
                "lines",
            ),
            (
                json!({"lines": [{"ticket_type": 1}], "ticket_type": 1}),
                "lines",
            ),
        ] {
            let errors = reserve_of(&bad).unwrap_err();
            assert!(errors.contains_key(field), "{bad}: {errors:?}");
        }
        let eleven: Vec<Value> = (1..=11).map(|t| json!({"ticket_type": t})).collect();
        assert!(reserve_of(&json!({ "lines": eleven })).is_err());
    }
}
