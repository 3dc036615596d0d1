//! The order submission message, schema version 1 (docs/architecture.md §3), and its validation. Every way a
//! message can be wrong maps to a machine-readable [`RejectionCode`]; nothing is silently dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checkout::{Address, MAX_QUANTITY_PER_LINE, MAX_UNIT_PRICE_CENTS, PaymentDetails, QuotedLine, Tier};
use super::ids;

pub const SCHEMA_VERSION: u64 = 1;
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
pub const MAX_LINE_ITEMS: usize = 50;
pub const MAX_CUSTOMER_ID_CHARS: usize = 128;
/// Step Functions execution names (the order id names the saga) allow at most 80 characters.
pub const MAX_ORDER_ID_LEN: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionCode {
    MessageTooLarge,
    MalformedJson,
    UnsupportedSchemaVersion,
    MissingField,
    InvalidField,
    TooManyItems,
    NonPositiveQuantity,
    NonPositivePrice,
    /// A quantity, a quoted price or a total over its documented limit (`domain::checkout`).
    LimitExceeded,
    UnknownSku,
    /// A quoted unit price that is not the catalog's (the detail names both).
    PriceChanged,
    IdempotencyKeyReused,
}

/// Why a message was rejected: a code for machines, the field and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{code:?}{}: {detail}", field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default())]
pub struct Rejection {
    pub code: RejectionCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub detail: String,
}

impl Rejection {
    pub fn new(code: RejectionCode, field: Option<&str>, detail: impl Into<String>) -> Self {
        Self { code, field: field.map(str::to_owned), detail: detail.into() }
    }

    /// `Code` or `Code:field`, the short form stored as the order's reason.
    pub fn reason(&self) -> String {
        match &self.field {
            Some(field) => format!("{:?}:{field}", self.code),
            None => format!("{:?}", self.code),
        }
    }
}

/// A message that passed validation: what the submitter asks for. Prices and the tier are then the
/// orchestrator's to decide (`domain::terms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSubmission {
    pub order_id: String,
    pub idempotency_key: String,
    pub customer_id: String,
    pub customer_email: String,
    /// The tier the message claims, if any: never taken as it is (the customer's record decides).
    pub claimed_tier: Option<Tier>,
    pub currency: String,
    pub items: Vec<QuotedLine>,
    pub payment: PaymentDetails,
    pub shipping_address: Address,
    /// SHA-256 of the message, to tell a replay from a reused idempotency key.
    pub payload_hash: String,
}

/// A rejected message, with the order id when one can be derived from it (then the order is recorded as
/// REJECTED; otherwise the message goes to the intake DLQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSubmission {
    pub order_id: Option<String>,
    pub rejection: Rejection,
}

/// Validates everything that needs no lookup; SKUs are checked against the catalog afterwards.
pub fn validate(raw: &[u8]) -> Result<ValidSubmission, InvalidSubmission> {
    let reject = |order_id: Option<String>, rejection| InvalidSubmission { order_id, rejection };
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(reject(
            None,
            Rejection::new(RejectionCode::MessageTooLarge, None, format!("{} bytes > {MAX_MESSAGE_BYTES}", raw.len())),
        ));
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| reject(None, Rejection::new(RejectionCode::MalformedJson, None, e.to_string())))?;
    let Value::Object(message) = &value else {
        return Err(reject(None, Rejection::new(RejectionCode::MalformedJson, None, "not a JSON object")));
    };
    // Derive the order id first so that any later rejection can be recorded against it.
    let order_id = derive_order_id(message).map_err(|rejection| reject(None, rejection))?;
    let fail = |rejection| reject(order_id.clone(), rejection);

    match message.get("schemaVersion") {
        Some(v) if v.as_u64() == Some(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(fail(Rejection::new(
                RejectionCode::UnsupportedSchemaVersion,
                Some("schemaVersion"),
                format!("{} is not supported (expected {SCHEMA_VERSION})", preview(v)),
            )));
        }
        None => return Err(fail(missing("schemaVersion"))),
    }
    let idempotency_key = text(message, "idempotencyKey", 256).map_err(fail)?;
    let Some(order_id) = order_id.clone() else {
        return Err(fail(missing("idempotencyKey")));
    };
    let customer_id = text(message, "customerId", MAX_CUSTOMER_ID_CHARS).map_err(fail)?;
    let customer_email = text(message, "customerEmail", 254).map_err(fail)?;
    if !is_plausible_email(&customer_email) {
        return Err(fail(invalid("customerEmail", "not an email address")));
    }
    let claimed_tier = match message.get("tier") {
        None | Some(Value::Null) => None,
        Some(_) => Some(match text(message, "tier", 16).map_err(fail)?.as_str() {
            "STANDARD" => Tier::Standard,
            "VIP" => Tier::Vip,
            other => return Err(fail(invalid("tier", format!("{other:?} is not STANDARD or VIP")))),
        }),
    };
    let currency = text(message, "currency", 3).map_err(fail)?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(fail(invalid("currency", "not an ISO 4217 code")));
    }
    let items = line_items(message.get("items")).map_err(fail)?;
    let payment = object(message, "payment").map_err(fail)?;
    let payment = PaymentDetails {
        method: text(payment, "method", 32).map_err(|r| fail(prefixed("payment", r)))?,
        token: text(payment, "token", 256).map_err(|r| fail(prefixed("payment", r)))?,
    };
    let address = object(message, "shippingAddress").map_err(fail)?;
    let address_text = |field| text(address, field, 256).map_err(|r| fail(prefixed("shippingAddress", r)));
    let shipping_address = Address {
        line1: address_text("line1")?,
        city: address_text("city")?,
        postal_code: address_text("postalCode")?,
        country: address_text("country")?,
    };
    Ok(ValidSubmission {
        order_id,
        idempotency_key,
        customer_id,
        customer_email,
        claimed_tier,
        currency,
        items,
        payment,
        shipping_address,
        payload_hash: ids::sha256_hex(raw),
    })
}

/// The order id: the message's own, or derived from its idempotency key so every redelivery maps to one id.
fn derive_order_id(message: &serde_json::Map<String, Value>) -> Result<Option<String>, Rejection> {
    match message.get("orderId") {
        None | Some(Value::Null) => Ok(message
            .get("idempotencyKey")
            .and_then(Value::as_str)
            .filter(|k| !k.trim().is_empty())
            .map(ids::order_id_for_key)),
        Some(Value::String(id)) if is_valid_order_id(id) => Ok(Some(id.clone())),
        Some(_) => Err(invalid("orderId", format!("1–{MAX_ORDER_ID_LEN} characters of A-Z a-z 0-9 - _"))),
    }
}

/// A value echoed back in a rejection, cut short: whatever arrives, a rejection stays small.
fn preview(value: &Value) -> String {
    const MAX_CHARS: usize = 40;
    let text = value.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

pub fn is_valid_order_id(id: &str) -> bool {
    (1..=MAX_ORDER_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn line_items(value: Option<&Value>) -> Result<Vec<QuotedLine>, Rejection> {
    let items = match value {
        None | Some(Value::Null) => return Err(missing("items")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("items", "not a list")),
    };
    if items.is_empty() {
        return Err(missing("items"));
    }
    if items.len() > MAX_LINE_ITEMS {
        return Err(Rejection::new(
            RejectionCode::TooManyItems,
            Some("items"),
            format!("{} line items > {MAX_LINE_ITEMS}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| format!("items[{i}].{name}");
            let Value::Object(item) = item else { return Err(invalid(&format!("items[{i}]"), "not an object")) };
            let sku = text(item, "sku", 64).map_err(|r| prefixed(&format!("items[{i}]"), r))?;
            let quantity = positive(item.get("quantity"), &field("quantity"), RejectionCode::NonPositiveQuantity)?;
            let quantity = u32::try_from(quantity)
                .ok()
                .filter(|q| *q <= MAX_QUANTITY_PER_LINE)
                .ok_or_else(|| over_limit(&field("quantity"), MAX_QUANTITY_PER_LINE.into()))?;
            // The price the customer was shown, if the checkout sends it: checked against the catalog.
            let quoted_unit_price_cents = match item.get("unitPriceCents") {
                None | Some(Value::Null) => None,
                price => {
                    let price = positive(price, &field("unitPriceCents"), RejectionCode::NonPositivePrice)?;
                    if price > MAX_UNIT_PRICE_CENTS {
                        return Err(over_limit(&field("unitPriceCents"), MAX_UNIT_PRICE_CENTS));
                    }
                    Some(price)
                }
            };
            Ok(QuotedLine { sku, quantity, quoted_unit_price_cents })
        })
        .collect()
}

fn positive(value: Option<&Value>, field: &str, code: RejectionCode) -> Result<u64, Rejection> {
    match value {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(0), _, _) => Err(Rejection::new(code, Some(field), "must be positive")),
            (Some(v), _, _) => Ok(v),
            (None, Some(_), _) => Err(Rejection::new(code, Some(field), "must be positive")),
            (None, None, Some(f)) if f <= 0.0 => Err(Rejection::new(code, Some(field), "must be positive")),
            _ => Err(invalid(field, "must be a whole number")),
        },
        Some(_) => Err(invalid(field, "must be a number")),
    }
}

fn object<'a>(
    message: &'a serde_json::Map<String, Value>,
    field: &str,
) -> Result<&'a serde_json::Map<String, Value>, Rejection> {
    match message.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(invalid(field, "not an object")),
    }
}

fn text(message: &serde_json::Map<String, Value>, field: &str, max_len: usize) -> Result<String, Rejection> {
    match message.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) => checked_text(field, s, max_len).map(|()| s.clone()),
        Some(_) => Err(invalid(field, "not a string")),
    }
}

/// A text field's rule: not blank, at most `max_len` characters, no control characters.
fn checked_text(field: &str, text: &str, max_len: usize) -> Result<(), Rejection> {
    if text.trim().is_empty() {
        Err(missing(field))
    } else if text.chars().count() > max_len {
        Err(invalid(field, format!("longer than {max_len} characters")))
    } else if text.chars().any(char::is_control) {
        Err(invalid(field, "control characters"))
    } else {
        Ok(())
    }
}

/// Whether `customer_id` is one a submission may carry (`nexus customers` records only such ids).
pub fn check_customer_id(customer_id: &str) -> Result<(), Rejection> {
    checked_text("customerId", customer_id, MAX_CUSTOMER_ID_CHARS)
}

fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.contains('@'),
        None => false,
    }
}

fn over_limit(field: &str, limit: u64) -> Rejection {
    Rejection::new(RejectionCode::LimitExceeded, Some(field), format!("at most {limit}"))
}

fn missing(field: &str) -> Rejection {
    Rejection::new(RejectionCode::MissingField, Some(field), "missing or empty")
}

fn invalid(field: &str, detail: impl Into<String>) -> Rejection {
    Rejection::new(RejectionCode::InvalidField, Some(field), detail)
}

fn prefixed(parent: &str, mut rejection: Rejection) -> Rejection {
    rejection.field = rejection.field.map(|f| format!("{parent}.{f}"));
    rejection
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The contract's sample as users are shown it.
    fn sample() -> Value {
        serde_json::from_str(include_str!("../../../../examples/order.json")).expect("examples/order.json is JSON")
    }

    fn check(message: &Value) -> Result<ValidSubmission, InvalidSubmission> {
        validate(message.to_string().as_bytes())
    }

    fn code_of(message: &Value) -> (RejectionCode, Option<String>) {
        let error = check(message).expect_err("rejected");
        (error.rejection.code, error.rejection.field)
    }

    #[test]
    fn the_contract_sample_is_valid_and_gets_a_deterministic_id() {
        let a = check(&sample()).expect("valid");
        let b = check(&sample()).expect("valid");
        assert_eq!(a.order_id, b.order_id, "same key, same order id");
        assert_eq!((a.items[0].quantity, a.items[0].quoted_unit_price_cents), (2, Some(1999)));
        let mut other = sample();
        other["idempotencyKey"] = json!("k-2");
        assert_ne!(check(&other).expect("valid").order_id, a.order_id);
        let mut explicit = sample();
        explicit["orderId"] = json!("order-123");
        assert_eq!(check(&explicit).expect("valid").order_id, "order-123");
    }

    #[test]
    fn every_bad_field_has_a_code() {
        let cases: Vec<(&str, Value, RejectionCode)> = vec![
            ("schemaVersion", json!(2), RejectionCode::UnsupportedSchemaVersion),
            ("customerId", json!(""), RejectionCode::MissingField),
            ("customerEmail", json!("nope"), RejectionCode::InvalidField),
            ("tier", json!("GOLD"), RejectionCode::InvalidField),
            ("currency", json!("inr"), RejectionCode::InvalidField),
            ("items", json!([]), RejectionCode::MissingField),
            ("items", json!([{"sku": "S", "quantity": 0, "unitPriceCents": 1}]), RejectionCode::NonPositiveQuantity),
            ("items", json!([{"sku": "S", "quantity": -3, "unitPriceCents": 1}]), RejectionCode::NonPositiveQuantity),
            ("items", json!([{"sku": "S", "quantity": 1, "unitPriceCents": 0}]), RejectionCode::NonPositivePrice),
            ("items", json!([{"sku": "S", "quantity": 1.5, "unitPriceCents": 1}]), RejectionCode::InvalidField),
            ("items", json!([{"sku": "S", "quantity": "1", "unitPriceCents": 1}]), RejectionCode::InvalidField),
            ("items", json!([{"sku": "S", "quantity": 10_001}]), RejectionCode::LimitExceeded),
            ("items", json!([{"sku": "S", "quantity": 2_147_483_648_u64}]), RejectionCode::LimitExceeded),
            (
                "items",
                json!([{"sku": "S", "quantity": 1, "unitPriceCents": 8_589_934_592_u64}]),
                RejectionCode::LimitExceeded,
            ),
            ("payment", json!({"method": "card"}), RejectionCode::MissingField),
            ("shippingAddress", json!("somewhere"), RejectionCode::InvalidField),
        ];
        for (field, value, code) in cases {
            let mut message = sample();
            message[field] = value.clone();
            let error = check(&message).expect_err(field);
            assert_eq!(error.rejection.code, code, "{field} = {value}");
            assert!(error.order_id.is_some(), "an order id is derivable from the key");
        }
    }

    #[test]
    fn a_quote_and_a_tier_claim_are_optional() {
        let mut message = sample();
        message["items"] = json!([{"sku": "SKU-1", "quantity": 1}]);
        message.as_object_mut().expect("an object").remove("tier");
        let valid = check(&message).expect("valid");
        assert_eq!((valid.items[0].quoted_unit_price_cents, valid.claimed_tier), (None, None));
    }

    #[test]
    fn more_than_fifty_items_are_rejected() {
        let mut message = sample();
        message["items"] =
            json!((0..51).map(|_| json!({"sku": "SKU-1", "quantity": 1, "unitPriceCents": 1})).collect::<Vec<_>>());
        assert_eq!(code_of(&message).0, RejectionCode::TooManyItems);
    }

    #[test]
    fn unidentifiable_messages_have_no_order_id() {
        let huge = serde_json::json!({"schemaVersion": "9".repeat(200_000)}).to_string();
        let Err(rejected) = validate(huge.as_bytes()) else { panic!("accepted a huge schemaVersion") };
        assert!(rejected.rejection.detail.len() < 200, "the echo is bounded: {}", rejected.rejection.detail.len());
        for raw in [&b"not json"[..], b"[1,2]", b"{\"schemaVersion\": 1}"] {
            let error = validate(raw).expect_err("rejected");
            assert!(error.order_id.is_none(), "{}", String::from_utf8_lossy(raw));
        }
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(validate(&big).expect_err("too big").rejection.code, RejectionCode::MessageTooLarge);
        let mut bad_id = sample();
        bad_id["orderId"] = json!("has spaces and / slashes");
        assert_eq!(check(&bad_id).expect_err("bad id").order_id, None);
    }

    #[test]
    fn reasons_are_short_and_machine_readable() {
        let mut message = sample();
        message["items"][0]["quantity"] = json!(0);
        let error = check(&message).expect_err("rejected");
        assert_eq!(error.rejection.reason(), "NonPositiveQuantity:items[0].quantity");
    }
}
