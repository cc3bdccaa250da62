//! The demo shop's data (`examples/commerce/catalog.json`, written by
//! `scripts/generate-catalog.py`): products with their size and width variants and stock,
//! stock per store, stores, customers, orders, gift cards and coupons.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// The data file, embedded so `warden serve` runs the demo without a checkout.
pub const EMBEDDED: &str = include_str!("../../../examples/commerce/catalog.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Shop {
    pub products: Vec<Product>,
    /// `PRODUCT|SIZE|WIDTH` → store id → units.
    pub store_stock: HashMap<String, BTreeMap<String, u32>>,
    pub stores: Vec<Store>,
    pub customers: Vec<Customer>,
    pub orders: Vec<Order>,
    pub gift_cards: Vec<GiftCard>,
    pub coupons: Vec<Coupon>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub brand: String,
    pub category: String,
    pub gender: String,
    pub description: String,
    /// List price in USD.
    pub price: f64,
    pub colors: Vec<String>,
    pub tags: Vec<String>,
    pub rating: f64,
    pub review_count: u32,
    /// Shoe widths offered (empty for products without widths).
    pub widths: Vec<String>,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variant {
    pub size: String,
    pub width: Option<String>,
    /// Units in the warehouse.
    pub stock: u32,
    #[serde(default)]
    pub restock_date: Option<String>,
}

impl Product {
    pub fn total_stock(&self) -> u32 {
        self.variants.iter().map(|v| v.stock).sum()
    }

    /// The variant of `size` (and `width`, when the product has widths; `standard` when
    /// none is asked for).
    pub fn variant(&self, size: &str, width: Option<&str>) -> Option<&Variant> {
        let width = match width {
            Some(w) => Some(normalize_width(w)),
            None if !self.widths.is_empty() => Some("standard".to_string()),
            None => None,
        };
        self.variants.iter().find(|v| {
            same_size(&v.size, size)
                && match (&v.width, &width) {
                    (Some(have), Some(want)) => have == want,
                    (None, _) => true,
                    (Some(_), None) => false,
                }
        })
    }
}

/// `10`, `10.0` and ` 10 ` name one size; apparel sizes compare case-insensitively.
pub fn same_size(have: &str, want: &str) -> bool {
    let want = want.trim();
    match (have.parse::<f64>(), want.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() < 1e-9,
        _ => have.eq_ignore_ascii_case(want),
    }
}

/// `Wide`, `W`, `2E` (men's wide) and `D` (women's wide) as the catalog names them.
pub fn normalize_width(width: &str) -> String {
    match width.trim().to_ascii_lowercase().as_str() {
        "w" | "2e" | "d" | "wide" => "wide".into(),
        "xw" | "4e" | "2d" | "extra wide" | "extra-wide" | "x-wide" => "extra-wide".into(),
        "n" | "b" | "narrow" => "narrow".into(),
        "m" | "medium" | "regular" | "normal" | "standard" => "standard".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Store {
    pub id: String,
    pub name: String,
    pub address: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub lat: f64,
    pub lon: f64,
    pub hours: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub loyalty_points: u64,
    pub tier: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub placed_at: String,
    pub status: String,
    pub items: Vec<OrderItem>,
    pub total: f64,
    pub shipping_address: String,
    pub tracking_number: Option<String>,
    pub carrier: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: String,
    pub name: String,
    pub size: String,
    pub width: Option<String>,
    pub quantity: u32,
    pub unit_price: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GiftCard {
    pub code: String,
    pub balance: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Coupon {
    pub code: String,
    pub percent_off: f64,
    pub min_total: f64,
    #[serde(default)]
    pub categories: Vec<String>,
}

impl Shop {
    pub fn parse(text: &str) -> anyhow::Result<Shop> {
        let shop: Shop = serde_json::from_str(text)?;
        anyhow::ensure!(!shop.products.is_empty(), "the shop has no products");
        Ok(shop)
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.products
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(id.trim()))
    }

    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(id.trim()))
    }

    /// Units of a variant per store.
    pub fn stores_with(
        &self,
        product: &str,
        size: &str,
        width: Option<&str>,
    ) -> Vec<(&Store, u32)> {
        let key = format!("{product}|{size}|{}", width.unwrap_or(""));
        let Some(counts) = self.store_stock.get(&key) else {
            return Vec::new();
        };
        self.stores
            .iter()
            .filter_map(|s| counts.get(&s.id).map(|n| (s, *n)))
            .collect()
    }
}

/// Two decimals, as prices are shown.
pub fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}
