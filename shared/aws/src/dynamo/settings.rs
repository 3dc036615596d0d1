//! Run-time settings: the chaos settings live in one item of the settings table (read by the functions
//! through [`ChaosSource`], written by `nexus chaos` and the tests); the standard sagas holding a slot in
//! another (`nexus_core::domain::admission`, written with the orders).

use std::collections::{BTreeSet, HashMap};

use nexus_core::chaos::ChaosSettings;
use nexus_core::domain::admission::{SAGA_SLOT_HOLDERS, SAGA_SLOTS_ITEM};
use nexus_core::ports::{ChaosSource, PortError, PortResult, SagaSlots};

use super::Dynamo;
use crate::ext::{s, to_item, unavailable};
use aws_sdk_dynamodb::types::AttributeValue;

/// The key of the chaos settings' item.
const CHAOS_ITEM: &str = "chaos";

impl ChaosSource for Dynamo {
    async fn load(&self) -> PortResult<ChaosSettings> {
        let settings = self.get_item("read chaos settings", &self.tables.settings, &[("name", CHAOS_ITEM)]).await?;
        Ok(settings.unwrap_or_default())
    }
}

impl Dynamo {
    /// The orders holding a standard saga slot (for tools and checks: a holder whose saga ended is a leak).
    pub async fn saga_slot_holders(&self) -> PortResult<BTreeSet<String>> {
        let key = [("name", SAGA_SLOTS_ITEM)];
        let item: Option<HashMap<String, serde_json::Value>> =
            self.get_item("read saga slots", &self.tables.settings, &key).await?;
        // A string set, which DynamoDB removes with its last member.
        match item.and_then(|mut item| item.remove(SAGA_SLOT_HOLDERS)) {
            Some(holders) => serde_json::from_value(holders)
                .map_err(|e| PortError::Corrupt { operation: "read saga slots", message: e.to_string() }),
            None => Ok(BTreeSet::new()),
        }
    }

    /// Replaces the chaos settings (an empty set clears them).
    pub async fn save_chaos(&self, settings: &ChaosSettings) -> PortResult<()> {
        let mut item = to_item("write chaos settings", settings)?;
        item.insert("name".into(), s(CHAOS_ITEM));
        self.client
            .put_item()
            .table_name(&self.tables.settings)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("write chaos settings", e))?;
        Ok(())
    }
}

impl SagaSlots for Dynamo {
    async fn holders(&self) -> PortResult<BTreeSet<String>> {
        self.saga_slot_holders().await
    }

    async fn free(&self, order_id: &str) -> PortResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.settings)
            .key("name", s(SAGA_SLOTS_ITEM))
            .update_expression("DELETE #holders :order")
            .condition_expression("contains(#holders, :id)")
            .expression_attribute_names("#holders", SAGA_SLOT_HOLDERS)
            .expression_attribute_values(":order", AttributeValue::Ss(vec![order_id.to_owned()]))
            .expression_attribute_values(":id", s(order_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable("free saga slot", e)),
        }
    }
}
