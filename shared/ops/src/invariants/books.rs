//! The stock and money books, order by order and then over all of them: at most one attempt's entry of
//! each effect holds; a completed order holds its stock and is charged its total once; a cancelled or
//! rejected one holds neither; every unit is available or reserved; every cent charged is refunded, a
//! completed order's total or an in-flight order's charge.

use std::collections::BTreeMap;

use nexus_core::domain::ledger::{Effect, LedgerEntry};
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;
use nexus_core::domain::stock::StockItem;

use super::Found;

#[derive(Debug, Default)]
pub(super) struct Books {
    reserved_units: BTreeMap<String, u64>,
    pub charged: u64,
    pub refunded: u64,
    pub completed_total: u64,
    in_flight_charged: u64,
}

impl Books {
    /// Enters one order, whose ledger entries of each effect `entries` gives (every attempt's).
    pub fn add<'a>(
        &mut self,
        order: &Order,
        entries: impl Fn(Effect) -> &'a [&'a LedgerEntry],
        violation: &mut Found<'_>,
    ) {
        let id = order.order_id.as_str();
        for effect in Effect::ALL {
            let holding: Vec<&str> = entries(effect).iter().filter(|e| e.holds()).map(|e| e.entry.as_str()).collect();
            if holding.len() > 1 {
                violation("one-attempt-holds", id, format!("{} entries hold at once: {holding:?}", effect.key()));
            }
        }
        let (reservations, payments) = (entries(Effect::Reservation), entries(Effect::Payment));
        let holds_stock = reservations.iter().any(|r| r.holds());
        for reservation in reservations.iter().filter(|r| r.holds()) {
            for line in &reservation.lines {
                *self.reserved_units.entry(line.sku.clone()).or_default() += line.quantity;
            }
        }
        let net_charge: u64 = payments.iter().filter(|p| p.holds()).map(|p| p.amount_cents).sum();
        for payment in payments.iter().filter(|p| p.holds() || p.amount_cents > 0) {
            self.charged += payment.amount_cents;
            if !payment.holds() {
                self.refunded += payment.amount_cents;
            }
        }
        match order.status {
            OrderStatus::Completed => {
                self.completed_total += order.total_cents;
                if !holds_stock {
                    violation("completed-holds-stock", id, "COMPLETED without a reservation".into());
                }
                if net_charge != order.total_cents {
                    let detail = format!("net charge {net_charge} != total {}", order.total_cents);
                    violation("completed-charged-once", id, detail);
                }
            }
            OrderStatus::Cancelled | OrderStatus::Rejected => {
                if holds_stock {
                    violation("cancelled-no-reservation", id, format!("{} order still holds stock", order.status));
                }
                if net_charge != 0 {
                    let detail = format!("{} order has a net charge of {net_charge}", order.status);
                    violation("cancelled-no-charge", id, detail);
                }
            }
            status if !status.is_terminal() => self.in_flight_charged += net_charge,
            _ => {}
        }
    }

    /// Balances the books once every order is in: stock conserved per SKU, money conserved overall.
    pub fn close(&self, stock: &[StockItem], violation: &mut Found<'_>) {
        for item in stock {
            let reserved = self.reserved_units.get(&item.sku).copied().unwrap_or(0);
            if item.initial != item.available + reserved {
                let detail = format!("initial {} != available {} + reserved {reserved}", item.initial, item.available);
                violation("stock-conserved", &item.sku, detail);
            }
        }
        if self.charged.saturating_sub(self.refunded) != self.completed_total + self.in_flight_charged {
            let detail = format!(
                "charges {} - refunds {} != completed totals {} + in-flight charges",
                self.charged, self.refunded, self.completed_total
            );
            violation("money-conserved", "all orders", detail);
        }
    }
}
