//! `nexus inventory`: load a catalog, set a SKU's stock and price, list them.

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

use nexus_aws::dynamo::Dynamo;
use nexus_core::domain::checkout::MAX_UNIT_PRICE_CENTS;
use nexus_core::domain::stock::StockItem;

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Subcommand)]
pub enum InventoryCommand {
    /// Set the stock and price of every SKU of a catalog file (`{"items": [{"sku": …, "available": …,
    /// "unitPriceCents": …}]}`, as infra/catalog.json).
    Load { file: PathBuf },
    /// Set one SKU's available units (created when new), and its price.
    Set {
        sku: String,
        quantity: u64,
        /// The unit price in minor units (intake prices every order line from it; a SKU without one is
        /// not for sale).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_UNIT_PRICE_CENTS))]
        price: Option<u64>,
    },
    /// Every SKU with its price and its available, initial and sold units.
    List,
}

#[derive(Debug, Deserialize)]
struct Catalog {
    items: Vec<CatalogItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogItem {
    sku: String,
    available: u64,
    unit_price_cents: Option<u64>,
}

/// Sets a SKU's stock, then its price when one is given.
async fn set(store: &Dynamo, sku: &str, available: u64, price: Option<u64>) -> anyhow::Result<StockItem> {
    let mut stock = store.set_stock(sku, available).await.context("set stock")?;
    if let Some(price) = price {
        if !(1..=MAX_UNIT_PRICE_CENTS).contains(&price) {
            return Err(
                Failure::Usage(format!("{sku}: a price of {price} is not within 1–{MAX_UNIT_PRICE_CENTS}")).into()
            );
        }
        store.set_price(sku, price).await.context("set price")?;
        stock.unit_price_cents = Some(price);
    }
    Ok(stock)
}

pub async fn run(nexus: &Nexus, format: Format, command: InventoryCommand) -> anyhow::Result<()> {
    let store = nexus.dynamo()?;
    match command {
        InventoryCommand::Load { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            let catalog: Catalog = serde_json::from_str(&text)
                .map_err(|e| Failure::Usage(format!("{} is not a catalog: {e}", file.display())))?;
            let mut loaded = Vec::new();
            for (i, item) in catalog.items.iter().enumerate() {
                render::progress(format!("{}/{} {}", i + 1, catalog.items.len(), item.sku));
                loaded.push(set(&store, &item.sku, item.available, item.unit_price_cents).await?);
            }
            match format {
                Format::Json => render::json(&loaded),
                Format::Table => {
                    println!("loaded {} SKU(s) from {}", loaded.len(), file.display());
                    Ok(())
                }
            }
        }
        InventoryCommand::Set { sku, quantity, price } => {
            let stock = set(&store, &sku, quantity, price).await?;
            match format {
                Format::Json => render::json(&stock),
                Format::Table => {
                    let price = price.map(|p| format!(" at {p}")).unwrap_or_default();
                    println!("{sku}: {} available{price}", stock.available);
                    Ok(())
                }
            }
        }
        InventoryCommand::List => {
            let mut stock = store.all_stock().await.context("scan the inventory")?;
            stock.sort_by(|a, b| a.sku.cmp(&b.sku));
            if format == Format::Json {
                return render::json(&stock);
            }
            let mut table = render::table(["sku", "unit price", "available", "initial", "sold"]);
            for item in &stock {
                table.add_row([
                    item.sku.clone(),
                    item.unit_price_cents.map_or_else(|| "not for sale".to_owned(), |p| p.to_string()),
                    item.available.to_string(),
                    item.initial.to_string(),
                    item.initial.saturating_sub(item.available).to_string(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
    }
}
