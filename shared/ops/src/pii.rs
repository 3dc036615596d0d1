//! Masks what identifies a customer in a message shown to an operator (`nexus dlq peek`): DLQs keep raw
//! submissions for 14 days, and a terminal or a ticket is no place for an email address, a street address or
//! a payment token. `--show-pii` shows them as they are.

use serde_json::Value;

/// Keys whose string values identify a person or pay for something, wherever they appear.
const SENSITIVE_KEYS: [&str; 4] = ["customerEmail", "email", "token", "phone"];
/// Objects whose every string value is masked (an address is personal as a whole).
const SENSITIVE_OBJECTS: [&str; 2] = ["shippingAddress", "billingAddress"];
const MASK: &str = "***";

/// The body with personal data masked. A body that is not JSON cannot be inspected field by field, so only
/// its size is shown.
pub fn mask_body(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(mut value) => {
            mask(&mut value, false);
            value.to_string()
        }
        Err(_) if body.is_empty() => String::new(),
        Err(_) => format!("({} bytes, not JSON: masked; --show-pii shows it)", body.len()),
    }
}

/// An email shown by its domain only: enough to see which shop or test sent it.
fn mask_email(email: &str) -> String {
    email.rsplit_once('@').map_or_else(|| MASK.to_owned(), |(_, domain)| format!("{MASK}@{domain}"))
}

fn mask(value: &mut Value, inside_sensitive: bool) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                let sensitive_object = SENSITIVE_OBJECTS.contains(&key.as_str());
                match field {
                    Value::String(text) if inside_sensitive || SENSITIVE_KEYS.contains(&key.as_str()) => {
                        *text =
                            if key.to_ascii_lowercase().contains("email") { mask_email(text) } else { MASK.to_owned() };
                    }
                    _ => mask(field, inside_sensitive || sensitive_object),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| mask(item, inside_sensitive)),
        Value::String(text) if inside_sensitive => *text = MASK.to_owned(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masks_email_address_and_payment_token_and_keeps_the_rest() {
        let body = json!({
            "idempotencyKey": "k-1", "customerId": "c-1", "customerEmail": "asha@example.com",
            "items": [{"sku": "SKU-1", "quantity": 2}],
            "payment": {"method": "card", "token": "tok_4242"},
            "shippingAddress": {"line1": "1 MG Road", "city": "Indore", "postalCode": "452001", "country": "IN"}
        });
        let masked: Value = serde_json::from_str(&mask_body(&body.to_string())).expect("json");
        assert_eq!(masked["customerEmail"], "***@example.com");
        assert_eq!(masked["payment"], json!({"method": "card", "token": "***"}));
        assert_eq!(
            masked["shippingAddress"],
            json!({"line1": "***", "city": "***", "postalCode": "***", "country": "***"})
        );
        assert_eq!(
            (masked["idempotencyKey"].as_str(), masked["items"][0]["sku"].as_str()),
            (Some("k-1"), Some("SKU-1"))
        );
        let text = masked.to_string();
        for secret in ["asha", "tok_4242", "MG Road", "452001"] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_not_shown() {
        let masked = mask_body("asha@example.com sent junk");
        assert!(!masked.contains("asha"), "{masked}");
        assert!(masked.contains("26 bytes"), "{masked}");
    }
}
