//! The inventory backend: a real GraphQL endpoint (as an ERP exposes one) over the
//! warehouse and store stock, served with `async-graphql`.
//!
//! ```graphql
//! query { inventory(productId: "P1001", size: "10", width: "wide") { totalAvailable variants { size width available inStock restockDate } } }
//! query { storeStock(productId: "P1001", size: "10", city: "Portland") { storeName city available } }
//! query { restock(productId: "P1001", size: "10", width: "wide") { inStock available restockDate } }
//! ```

use std::sync::Arc;

use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

use super::data::{Product, Shop, normalize_width, same_size};

pub type InventorySchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub fn schema(shop: Arc<Shop>) -> InventorySchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(shop)
        .limit_depth(8)
        .limit_complexity(500)
        .finish()
}

pub struct Query;

#[derive(SimpleObject)]
pub struct Inventory {
    product_id: String,
    name: String,
    total_available: u32,
    variants: Vec<VariantStock>,
}

#[derive(SimpleObject)]
pub struct VariantStock {
    size: String,
    width: Option<String>,
    available: u32,
    in_stock: bool,
    restock_date: Option<String>,
}

#[derive(SimpleObject)]
pub struct StoreStock {
    store_id: String,
    store_name: String,
    city: String,
    state: String,
    available: u32,
}

#[derive(SimpleObject)]
pub struct Restock {
    product_id: String,
    size: String,
    width: Option<String>,
    in_stock: bool,
    available: u32,
    /// When the warehouse expects the variant back (`null` while in stock).
    restock_date: Option<String>,
}

fn product<'a>(ctx: &Context<'a>, id: &str) -> async_graphql::Result<(Arc<Shop>, Product)> {
    let shop = ctx.data::<Arc<Shop>>()?.clone();
    let product = shop
        .product(id)
        .cloned()
        .ok_or_else(|| async_graphql::Error::new(format!("no product `{id}`")))?;
    Ok((shop, product))
}

#[Object]
impl Query {
    /// Warehouse stock of a product, optionally of one size and width.
    async fn inventory(
        &self,
        ctx: &Context<'_>,
        product_id: String,
        size: Option<String>,
        width: Option<String>,
    ) -> async_graphql::Result<Inventory> {
        let (_, p) = product(ctx, &product_id)?;
        let width = width.map(|w| normalize_width(&w));
        let variants: Vec<VariantStock> = p
            .variants
            .iter()
            .filter(|v| size.as_deref().is_none_or(|s| same_size(&v.size, s)))
            .filter(|v| match (&width, &v.width) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .map(|v| VariantStock {
                size: v.size.clone(),
                width: v.width.clone(),
                available: v.stock,
                in_stock: v.stock > 0,
                restock_date: v.restock_date.clone(),
            })
            .collect();
        Ok(Inventory {
            product_id: p.id.clone(),
            name: p.name.clone(),
            total_available: variants.iter().map(|v| v.available).sum(),
            variants,
        })
    }

    /// Stores holding a size (and width) of a product, optionally in one city.
    async fn store_stock(
        &self,
        ctx: &Context<'_>,
        product_id: String,
        size: String,
        width: Option<String>,
        city: Option<String>,
    ) -> async_graphql::Result<Vec<StoreStock>> {
        let (shop, p) = product(ctx, &product_id)?;
        let Some(variant) = p.variant(&size, width.as_deref()) else {
            return Ok(Vec::new());
        };
        Ok(shop
            .stores_with(&p.id, &variant.size, variant.width.as_deref())
            .into_iter()
            .filter(|(s, _)| {
                city.as_deref()
                    .is_none_or(|c| s.city.eq_ignore_ascii_case(c.trim()))
            })
            .map(|(s, n)| StoreStock {
                store_id: s.id.clone(),
                store_name: s.name.clone(),
                city: s.city.clone(),
                state: s.state.clone(),
                available: n,
            })
            .collect())
    }

    /// Whether a variant is in stock, and when it returns when it is not.
    async fn restock(
        &self,
        ctx: &Context<'_>,
        product_id: String,
        size: String,
        width: Option<String>,
    ) -> async_graphql::Result<Restock> {
        let (_, p) = product(ctx, &product_id)?;
        let v = p
            .variant(&size, width.as_deref())
            .ok_or_else(|| async_graphql::Error::new("no such size or width"))?;
        Ok(Restock {
            product_id: p.id.clone(),
            size: v.size.clone(),
            width: v.width.clone(),
            in_stock: v.stock > 0,
            available: v.stock,
            restock_date: v.restock_date.clone(),
        })
    }
}
