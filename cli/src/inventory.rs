//! `nexus inventory`: load a catalog, set a SKU's stock, list stock.

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Subcommand)]
pub enum InventoryCommand {
    /// Set the stock of every SKU of a catalog file (`{"items": [{"sku": …, "available": …}]}`, as
    /// infra/catalog.json).
    Load { file: PathBuf },
    /// Set one SKU's available units (created when new).
    Set { sku: String, quantity: u64 },
    /// Every SKU with its available, initial and sold units.
    List,
}

#[derive(Debug, Deserialize)]
struct Catalog {
    items: Vec<CatalogItem>,
}

#[derive(Debug, Deserialize)]
struct CatalogItem {
    sku: String,
    available: u64,
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
                loaded.push(store.set_stock(&item.sku, item.available).await.context("set stock")?);
            }
            match format {
                Format::Json => render::json(&loaded),
                Format::Table => {
                    println!("loaded {} SKU(s) from {}", loaded.len(), file.display());
                    Ok(())
                }
            }
        }
        InventoryCommand::Set { sku, quantity } => {
            let stock = store.set_stock(&sku, quantity).await.context("set stock")?;
            match format {
                Format::Json => render::json(&stock),
                Format::Table => {
                    println!("{sku}: {} available", stock.available);
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
            let mut table = render::table(["sku", "available", "initial", "sold"]);
            for item in &stock {
                table.add_row([
                    item.sku.clone(),
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
