//! What the orchestrator decides for a submission, never the submitter: each line's unit price (the
//! catalog's), the order's total (checked arithmetic, within [`MAX_ORDER_TOTAL_CENTS`]) and the customer's
//! tier (the operator's record of the customer). docs/architecture.md §3, "Prices, tiers and limits".
//!
//! A quoted price that is not the catalog's is refused (`PriceChanged`, both prices in the detail) rather
//! than charged at the catalog's: the customer agreed to the price they were shown, and charging another
//! one, higher or lower, without asking is a decision for the checkout, which can show the new price and
//! submit again.

use std::collections::BTreeMap;

use super::checkout::{LineItem, MAX_ORDER_TOTAL_CENTS, QuotedLine, Tier, total_cents};
use super::submission::{Rejection, RejectionCode};

/// The order's terms as the orchestrator sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub items: Vec<LineItem>,
    pub total_cents: u64,
    pub tier: Tier,
}

/// The terms of `lines` at the catalog's `prices` (SKU → unit price; a SKU without one is not for sale),
/// for a customer whose record gives `tier` (none: STANDARD), or why the order is refused.
pub fn decide(lines: &[QuotedLine], prices: &BTreeMap<String, u64>, tier: Option<Tier>) -> Result<Terms, Rejection> {
    let items = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let Some(&price) = prices.get(&line.sku) else {
                let detail = format!("{} is not in the catalog", line.sku);
                return Err(Rejection::new(RejectionCode::UnknownSku, Some("items"), detail));
            };
            if let Some(quoted) = line.quoted_unit_price_cents.filter(|quoted| *quoted != price) {
                let detail = format!("{}: quoted {quoted}, the catalog price is {price}", line.sku);
                let field = format!("items[{i}].unitPriceCents");
                return Err(Rejection::new(RejectionCode::PriceChanged, Some(&field), detail));
            }
            Ok(LineItem { sku: line.sku.clone(), quantity: line.quantity, unit_price_cents: price })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total_cents = total_cents(&items).filter(|total| *total <= MAX_ORDER_TOTAL_CENTS).ok_or_else(|| {
        let detail = format!("the total is over {MAX_ORDER_TOTAL_CENTS}");
        Rejection::new(RejectionCode::LimitExceeded, Some("items"), detail)
    })?;
    Ok(Terms { items, total_cents, tier: tier.unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::checkout::{MAX_QUANTITY_PER_LINE, MAX_UNIT_PRICE_CENTS};

    fn line(sku: &str, quantity: u32, quoted: Option<u64>) -> QuotedLine {
        QuotedLine { sku: sku.into(), quantity, quoted_unit_price_cents: quoted }
    }

    fn catalog() -> BTreeMap<String, u64> {
        [("SKU-1".to_owned(), 500), ("SKU-5".to_owned(), 1500)].into()
    }

    #[test]
    fn the_catalog_prices_every_line_and_a_quote_must_match_it() {
        let terms = decide(&[line("SKU-1", 2, Some(500)), line("SKU-5", 1, None)], &catalog(), None).expect("priced");
        assert_eq!(terms.total_cents, 2 * 500 + 1500);
        assert_eq!(terms.items[1].unit_price_cents, 1500, "no quote: the catalog's price");
        assert_eq!(terms.tier, Tier::Standard, "no record: standard");
        let cheap = decide(&[line("SKU-1", 1, Some(500)), line("SKU-5", 1, Some(1))], &catalog(), None);
        let rejection = cheap.expect_err("a 1-cent quote of a 1500 SKU is refused");
        assert_eq!(
            (rejection.code, rejection.field.as_deref()),
            (RejectionCode::PriceChanged, Some("items[1].unitPriceCents"))
        );
        assert!(rejection.detail.contains("quoted 1") && rejection.detail.contains("1500"), "{}", rejection.detail);
        let dearer = decide(&[line("SKU-5", 1, Some(2000))], &catalog(), None).expect_err("a higher quote too");
        assert_eq!(dearer.code, RejectionCode::PriceChanged);
    }

    #[test]
    fn an_unpriced_sku_is_unknown_and_the_record_sets_the_tier() {
        let unknown = decide(&[line("SKU-404", 1, None)], &catalog(), Some(Tier::Vip)).expect_err("not for sale");
        assert_eq!(unknown.code, RejectionCode::UnknownSku);
        assert_eq!(decide(&[line("SKU-1", 1, None)], &catalog(), Some(Tier::Vip)).expect("priced").tier, Tier::Vip);
    }

    #[test]
    fn totals_never_wrap_and_stay_within_the_limit() {
        // The case: 2^31 units at 2^33 cents wrapped to a total of 0 in a release build.
        let huge: BTreeMap<String, u64> = [("BIG".to_owned(), 1 << 33), ("MAX".to_owned(), u64::MAX)].into();
        for lines in [vec![line("BIG", 1 << 31, None)], vec![line("MAX", 2, None)], vec![line("MAX", 1, None); 2]] {
            let rejection = decide(&lines, &huge, None).expect_err("over the limit");
            assert_eq!(rejection.code, RejectionCode::LimitExceeded, "{lines:?}");
        }
        let at_the_limit: BTreeMap<String, u64> = [("A".to_owned(), MAX_UNIT_PRICE_CENTS)].into();
        let most = (MAX_ORDER_TOTAL_CENTS / MAX_UNIT_PRICE_CENTS) as u32;
        assert!(most <= MAX_QUANTITY_PER_LINE);
        assert_eq!(
            decide(&[line("A", most, None)], &at_the_limit, None).expect("at").total_cents,
            MAX_ORDER_TOTAL_CENTS
        );
        assert!(decide(&[line("A", most + 1, None)], &at_the_limit, None).is_err());
    }
}
