//! Masks what identifies a customer in a message shown to an operator (`nexus dlq peek`): DLQs keep raw
//! submissions for 14 days, and a terminal or a ticket is no place for an email address, a street address or
//! a payment token. `--show-pii` shows them as they are.

use serde_json::Value;

/// Keys whose values identify a person, say where they live, or pay for something, wherever they appear:
/// compared case-insensitively and without separators (`customer_email`, `customerEmail` and
/// `Customer-Email` are one key). Everything under such a key is masked: a scalar of any type (a card
/// number may come as a JSON number), and every scalar of an object or list (an address is personal as a
/// whole).
const SENSITIVE_KEYS: [&str; 16] = [
    "customeremail",
    "email",
    "phone",
    "token",
    "tasktoken",
    "cardnumber",
    "pan",
    "cvv",
    "cvc",
    "customername",
    "fullname",
    "address",
    "shippingaddress",
    "billingaddress",
    "postalcode",
    "line1",
];
const MASK: &str = "***";

/// The body with personal data masked. A body that is not JSON cannot be inspected field by field, so only
/// its size is shown.
pub fn mask_body(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(mut value) => {
            mask(&mut value, None);
            value.to_string()
        }
        Err(_) if body.is_empty() => String::new(),
        Err(_) => format!("({} bytes, not JSON: masked; --show-pii shows it)", body.len()),
    }
}

/// A key as [`SENSITIVE_KEYS`] spells it: lower case, letters and digits only.
fn normalized(key: &str) -> String {
    key.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// An email shown by its domain only: enough to see which shop or test sent it.
fn mask_email(email: &str) -> String {
    email.rsplit_once('@').map_or_else(|| MASK.to_owned(), |(_, domain)| format!("{MASK}@{domain}"))
}

/// Masks `value`; `under` is the sensitive key it sits under, if any.
fn mask(value: &mut Value, under: Option<&str>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                let key = normalized(key);
                let sensitive = under.is_some() || SENSITIVE_KEYS.contains(&key.as_str());
                mask(field, if sensitive { Some(under.unwrap_or(&key)) } else { None });
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| mask(item, under)),
        Value::Null => {}
        scalar => {
            if let Some(key) = under {
                *scalar = Value::String(match scalar {
                    Value::String(text) if key.contains("email") => mask_email(text),
                    _ => MASK.to_owned(),
                });
            }
        }
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
    fn every_sensitive_key_is_masked_whatever_its_case_spelling_or_type() {
        let body = json!({
            "token": 4111111111111111_u64,
            "customer_email": "meera@example.com",
            "CardNumber": "4111 1111 1111 1111",
            "address": {"street": "4 Park Street", "pin": 700016},
            "customerName": "Meera Rao",
            "taskToken": "AQB8AAAAKgAAAAMAAAAA",
            "nested": [{"Shipping_Address": {"postalCode": 452001, "line1": "1 MG Road"}}],
            "PHONE": 919800000000_u64,
            "cvv": 123,
            "quantity": 2, "sku": "SKU-1", "note": null
        });
        let masked: Value = serde_json::from_str(&mask_body(&body.to_string())).expect("json");
        let text = masked.to_string();
        for secret in
            ["4111", "meera", "Park Street", "700016", "Meera Rao", "AQB8", "452001", "MG Road", "9198", "123"]
        {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        assert_eq!(masked["customer_email"], "***@example.com");
        assert_eq!(masked["token"], "***", "a number under a sensitive key too");
        assert_eq!((masked["quantity"].as_u64(), masked["sku"].as_str()), (Some(2), Some("SKU-1")));
        assert!(masked["note"].is_null());
    }

    #[test]
    fn a_body_that_is_not_json_is_not_shown() {
        let masked = mask_body("asha@example.com sent junk");
        assert!(!masked.contains("asha"), "{masked}");
        assert!(masked.contains("26 bytes"), "{masked}");
    }
}
