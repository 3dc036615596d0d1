//! Orders and their event log: an order is created with its first event in one transaction, unless its id
//! exists; every change writes the next version and its event together, conditional on the version read.

use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::ports::{CreateOutcome, EventLog, OrderStore, PortError, PortResult};

use super::Dynamo;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use nexus_core::domain::admission::{self, SAGA_SLOT_HOLDERS, SAGA_SLOTS_ITEM};

use crate::ext::{cancelled, n, put, s, to_attribute, to_item, unavailable, update};

impl OrderStore for Dynamo {
    async fn get(&self, order_id: &str) -> PortResult<Option<Order>> {
        let projection = self.order_projection.as_deref();
        self.get_projected("get order", &self.tables.orders, &[("orderId", order_id)], projection).await
    }

    async fn create(&self, order: &Order, event: &OrderEvent) -> PortResult<CreateOutcome> {
        let order = &self.saga_limit.admitted(order);
        let mut items = vec![
            put(&self.tables.orders, to_item("write order", order)?, "attribute_not_exists(orderId)", None)?,
            put(&self.tables.order_events, to_item("write event", event)?, "attribute_not_exists(orderId)", None)?,
        ];
        if let Some(bound) = self.saga_limit.slot_bound(order) {
            items.push(update(take_saga_slot(&self.tables.settings, &order.order_id, bound))?);
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e) => match e.as_service_error().and_then(cancelled) {
                Some(c) if c.condition_failed(0) => {
                    let existing =
                        self.get(&order.order_id).await?.ok_or(PortError::Conflict { operation: "create order" })?;
                    Ok(CreateOutcome::AlreadyExists(Box::new(existing)))
                }
                Some(c) if c.condition_failed(2) => Ok(CreateOutcome::NoSagaSlot),
                _ => Err(unavailable("create order", e)),
            },
        }
    }

    async fn create_rejected(&self, order: &Order, event: &OrderEvent) -> PortResult<bool> {
        Ok(matches!(self.create(order, event).await?, CreateOutcome::Created))
    }

    async fn transition(&self, current: &Order, next: &Order, event: &OrderEvent) -> PortResult<()> {
        let items = self.transition_items(current, next, event)?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            // A failed version condition, or two writers racing on the item: either way another writer won.
            Err(e)
                if e.as_service_error().and_then(cancelled).is_some_and(|c| c.any_condition_failed() || c.conflict) =>
            {
                Err(PortError::Conflict { operation: "order transition" })
            }
            Err(e) => Err(unavailable("order transition", e)),
        }
    }
}

/// Adds the order to the slot holders unless `bound` others hold one. Holding one already (a redelivered
/// submission whose first copy died after this write) admits it again.
fn take_saga_slot(settings: &str, order_id: &str, bound: u32) -> UpdateBuilder {
    Update::builder()
        .table_name(settings)
        .key("name", s(SAGA_SLOTS_ITEM))
        .update_expression("ADD #holders :order")
        .condition_expression("attribute_not_exists(#holders) OR size(#holders) < :bound OR contains(#holders, :id)")
        .expression_attribute_names("#holders", SAGA_SLOT_HOLDERS)
        .expression_attribute_values(":order", AttributeValue::Ss(vec![order_id.to_owned()]))
        .expression_attribute_values(":bound", n(u64::from(bound)))
        .expression_attribute_values(":id", s(order_id))
}

/// Removes the order from the slot holders (nothing changes when it holds none).
fn free_saga_slot(settings: &str, order_id: &str) -> UpdateBuilder {
    Update::builder()
        .table_name(settings)
        .key("name", s(SAGA_SLOTS_ITEM))
        .update_expression("DELETE #holders :order")
        .expression_attribute_names("#holders", SAGA_SLOT_HOLDERS)
        .expression_attribute_values(":order", AttributeValue::Ss(vec![order_id.to_owned()]))
}

/// The write of a transition: only the attributes a change makes (status, reason, version, time; attempt
/// and execution only when they change, which a saga step's never does: its role may write no more,
/// `nexus_core::services::TRANSITION_WRITES`), never the whole item, so a function that read a projection
/// of the order cannot erase what it did not read; conditional on the version read.
fn transition_update(table: &str, current: &Order, next: &Order) -> PortResult<UpdateBuilder> {
    let mut set = vec!["#status = :status", "#version = :next", "#updatedAt = :updatedAt"];
    let mut remove = Vec::new();
    let mut update = Update::builder()
        .table_name(table)
        .key("orderId", s(&next.order_id))
        .condition_expression("#version = :version")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#version", "version")
        .expression_attribute_names("#updatedAt", "updatedAt")
        .expression_attribute_names("#reason", "reason")
        .expression_attribute_values(":status", to_attribute(next.status)?)
        .expression_attribute_values(":next", n(next.version))
        .expression_attribute_values(":version", n(current.version))
        .expression_attribute_values(":updatedAt", s(&next.updated_at));
    if next.attempt != current.attempt {
        update = update
            .expression_attribute_names("#attempt", "attempt")
            .expression_attribute_values(":attempt", n(u64::from(next.attempt)));
        set.push("#attempt = :attempt");
    }
    // An optional attribute is set when the order has it, and removed when it has not (any more).
    match &next.reason {
        Some(reason) => {
            update = update.expression_attribute_values(":reason", s(reason));
            set.push("#reason = :reason");
        }
        None => remove.push("#reason"),
    }
    if next.execution_arn != current.execution_arn {
        update = update.expression_attribute_names("#executionArn", "executionArn");
        match &next.execution_arn {
            Some(arn) => {
                update = update.expression_attribute_values(":executionArn", s(arn));
                set.push("#executionArn = :executionArn");
            }
            None => remove.push("#executionArn"),
        }
    }
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    Ok(update.update_expression(expression))
}

impl Dynamo {
    /// The writes of a transition, for a transaction: the order's next version on its version condition,
    /// its event, and the freeing of the saga slot when the change ends a standard saga. An effect's write
    /// puts them in its own transaction ([`nexus_core::ports::Transition`]).
    pub(crate) fn transition_items(
        &self,
        current: &Order,
        next: &Order,
        event: &OrderEvent,
    ) -> PortResult<Vec<TransactWriteItem>> {
        let mut items = vec![
            update(transition_update(&self.tables.orders, current, next)?)?,
            put(&self.tables.order_events, to_item("write event", event)?, "attribute_not_exists(orderId)", None)?,
        ];
        if admission::frees_slot(next) {
            items.push(update(free_saga_slot(&self.tables.settings, &next.order_id))?);
        }
        Ok(items)
    }
}

impl EventLog for Dynamo {
    async fn events(&self, order_id: &str) -> PortResult<Vec<OrderEvent>> {
        self.query_order(&self.tables.order_events, order_id).await
    }
}

impl Dynamo {
    /// Every order (a scan: for tools and checks, not for the request path).
    pub async fn all_orders(&self) -> PortResult<Vec<Order>> {
        self.scan_all(&self.tables.orders).await
    }

    /// Writes `erased` (the order with its personal data blanked: `nexus_ops::forget`) over the order,
    /// unless it changed since `current` was read (`Ok(false)`). Only those attributes: no status changes,
    /// so neither the version nor the event log does.
    pub async fn erase_personal_data(&self, current: &Order, erased: &Order) -> PortResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.orders)
            .key("orderId", s(&current.order_id))
            .condition_expression("#version = :version")
            .update_expression("SET #email = :email, #address = :address, #payment = :payment, #erased = :erased")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#email", "customerEmail")
            .expression_attribute_names("#address", "shippingAddress")
            .expression_attribute_names("#payment", "payment")
            .expression_attribute_names("#erased", "personalDataErasedAt")
            .expression_attribute_values(":version", n(current.version))
            .expression_attribute_values(":email", s(&erased.customer_email))
            .expression_attribute_values(":address", to_attribute(&erased.shipping_address)?)
            .expression_attribute_values(":payment", to_attribute(&erased.payment)?)
            .expression_attribute_values(":erased", s(erased.personal_data_erased_at.as_deref().unwrap_or_default()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable("erase personal data", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::dynamo::tests::tables;
    use crate::ext::tests::cancelled_with;

    fn order(version: u64) -> Order {
        Order { order_id: "o-1".into(), version, ..Order::default() }
    }

    #[tokio::test]
    async fn a_failed_version_condition_or_a_racing_writer_is_a_conflict() {
        for codes in [&["ConditionalCheckFailed", "None"][..], &["TransactionConflict", "None"][..]] {
            let reasons: Vec<&'static str> = codes.to_vec();
            let rule = mock!(Client::transact_write_items).then_error(move || cancelled_with(&reasons));
            let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&rule]), tables());
            let (current, next) = (order(3), order(4));
            let result = dynamo.transition(&current, &next, &next.event(None)).await;
            assert!(matches!(result, Err(PortError::Conflict { .. })), "{codes:?}: {result:?}");
        }
    }

    #[tokio::test]
    async fn a_transition_writes_only_what_a_change_makes_and_a_projected_read_asks_for_its_attributes() {
        use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;

        let write = mock!(Client::transact_write_items)
            .match_requests(|request| {
                let update = request.transact_items()[0].update().expect("an update, never a put of the whole order");
                let names: std::collections::BTreeSet<&str> =
                    update.expression_attribute_names().into_iter().flatten().map(|(_, n)| n.as_str()).collect();
                update.update_expression()
                    == "SET #status = :status, #version = :next, #updatedAt = :updatedAt, #reason = :reason"
                    && update.condition_expression() == Some("#version = :version")
                    && names.iter().all(|n| nexus_core::services::TRANSITION_WRITES.contains(n))
                    && update.expression_attribute_values().is_some_and(|v| !v.contains_key(":customerEmail"))
            })
            .then_output(|| TransactWriteItemsOutput::builder().build());
        let read = mock!(Client::get_item)
            .match_requests(|request| {
                let names = request.expression_attribute_names().cloned().unwrap_or_default();
                request.projection_expression() == Some("#a0, #a1")
                    && names.get("#a0").map(String::as_str) == Some("orderId")
                    && names.get("#a1").map(String::as_str) == Some("status")
            })
            .then_output(|| GetItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&write, &read]);
        let dynamo = Dynamo::new(client, tables()).reading_orders(vec!["orderId", "status"]);
        let current = order(3);
        let next = Order { reason: Some("Payment.Declined".into()), ..order(4) };
        dynamo.transition(&current, &next, &next.event(None)).await.expect("the update is what was expected");
        assert_eq!(dynamo.get("o-1").await.expect("the projected read is what was expected"), None);
    }

    #[tokio::test]
    async fn a_standard_order_takes_a_saga_slot_with_its_creation_and_frees_it_with_its_end() {
        use nexus_core::domain::admission::SagaLimit;
        use nexus_core::domain::checkout::Tier;
        use nexus_core::domain::status::OrderStatus;

        let slot_write = |request: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput,
                          expression: &str| {
            let items = request.transact_items();
            items.len() == 3
                && items[2].update().is_some_and(|u| {
                    u.table_name() == "settings"
                        && u.key().get("name") == Some(&s(SAGA_SLOTS_ITEM))
                        && u.update_expression() == expression
                        && u.expression_attribute_values().and_then(|v| v.get(":order"))
                            == Some(&AttributeValue::Ss(vec!["o-1".into()]))
                })
        };
        // Over the bound: the slot's condition fails (the order's own put did not), nothing is written.
        let full = mock!(Client::transact_write_items)
            .match_requests(move |r| {
                slot_write(r, "ADD #holders :order")
                    && r.transact_items()[0]
                        .put()
                        .is_some_and(|p| p.item().get("holdsSagaSlot") == Some(&AttributeValue::Bool(true)))
                    && r.transact_items()[2].update().is_some_and(|u| {
                        u.condition_expression()
                            == Some(
                                "attribute_not_exists(#holders) OR size(#holders) < :bound OR contains(#holders, :id)",
                            )
                            && u.expression_attribute_values().and_then(|v| v.get(":bound")) == Some(&n(2))
                    })
            })
            .then_error(|| cancelled_with(&["None", "None", "ConditionalCheckFailed"]));
        let ended = mock!(Client::transact_write_items)
            .match_requests(move |r| slot_write(r, "DELETE #holders :order"))
            .then_output(|| {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput::builder().build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&full, &ended]);
        let dynamo = Dynamo::new(client.clone(), tables()).with_saga_limit(SagaLimit::parse("2").expect("a bound"));
        let standard = Order { tier: Tier::Standard, ..order(1) };
        let created = dynamo.create(&standard, &standard.event(None)).await.expect("answered");
        assert_eq!(created, CreateOutcome::NoSagaSlot);
        // The bound turned off since the order took its slot: the order's own record frees it.
        let unbounded = Dynamo::new(client, tables());
        let completed = Order {
            status: OrderStatus::Completed,
            holds_saga_slot: true,
            ..Order { tier: Tier::Standard, ..order(5) }
        };
        unbounded
            .transition(&order(4), &completed, &completed.event(None))
            .await
            .expect("the slot is freed with the end");
    }
}
