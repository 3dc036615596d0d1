//! Run-time settings: the chaos settings live in one item of the settings table (read by the functions
//! through [`ChaosSource`], written by `nexus chaos` and the tests).

use nexus_core::chaos::ChaosSettings;
use nexus_core::ports::{ChaosSource, PortResult};

use super::Dynamo;
use crate::ext::{s, to_item, unavailable};

/// The key of the chaos settings' item.
const CHAOS_ITEM: &str = "chaos";

impl ChaosSource for Dynamo {
    async fn load(&self) -> PortResult<ChaosSettings> {
        let settings = self.get_item("read chaos settings", &self.tables.settings, &[("name", CHAOS_ITEM)]).await?;
        Ok(settings.unwrap_or_default())
    }
}

impl Dynamo {
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
