//! The pricing backend: current prices from the list price with demand- and stock-based
//! rules (low stock +5 %, overstock −10 %, high demand +3 %), manual overrides
//! (`update_price`), coupons, price matching, competitor prices and bulk quotes.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::data::{Product, cents};
use super::{Commerce, Reply, Req, bad_request, not_found};

/// Below this many units in the warehouse, prices rise.
const LOW_STOCK: u32 = 40;
/// Above this many, they fall.
const OVERSTOCK: u32 = 250;

/// The rules that apply to a product, with their factors.
pub fn rules(p: &Product) -> Vec<(&'static str, f64)> {
    let stock = p.total_stock();
    let mut rules = Vec::new();
    if stock < LOW_STOCK {
        rules.push(("low_stock", 1.05));
    } else if stock > OVERSTOCK {
        rules.push(("overstock", 0.90));
    }
    if p.rating >= 4.6 && p.review_count >= 500 {
        rules.push(("high_demand", 1.03));
    }
    rules
}

/// The rules' price, ending in .99.
pub fn rule_price(p: &Product) -> f64 {
    let factor: f64 = rules(p).iter().map(|(_, f)| f).product();
    cents((p.price * factor).round().max(1.0) - 0.01)
}

/// `GET /pricing/products/{id}?quantity=`
pub fn price(shop: &Commerce, id: &str, req: &Req) -> Reply {
    let Some(p) = shop.shop.product(id) else {
        return not_found("product");
    };
    let quantity = req.query_f64("quantity").unwrap_or(1.0).max(1.0).floor();
    let price = shop.current_price(p);
    let overridden = shop.price_override(&p.id).is_some();
    let applied: Vec<Value> = if overridden {
        vec![json!("manual_override")]
    } else {
        rules(p).iter().map(|(name, _)| json!(name)).collect()
    };
    Reply::ok(json!({
        "product_id": p.id,
        "list_price": p.price,
        "price": price,
        "currency": "USD",
        "rules_applied": applied,
        "quantity": quantity,
        "total": cents(price * quantity),
    }))
}

/// `PUT /pricing/products/{id}` with `{"price": …}`.
pub fn update(shop: &Commerce, id: &str, req: &Req) -> Reply {
    let Some(p) = shop.shop.product(id) else {
        return not_found("product");
    };
    let Some(new) = req.body_f64("price").filter(|p| *p > 0.0 && *p < 100_000.0) else {
        return bad_request("`price` must be a positive amount in USD");
    };
    let old = shop.current_price(p);
    shop.set_price(&p.id, cents(new));
    Reply::ok(json!({"product_id": p.id, "old_price": old, "price": cents(new), "currency": "USD"}))
}

/// `POST /pricing/coupons/apply` with `{"code", "product_id", "quantity"}`.
pub fn apply_coupon(shop: &Commerce, req: &Req) -> Reply {
    let code = req
        .body_str("code")
        .unwrap_or_default()
        .trim()
        .to_uppercase();
    let Some(p) = req
        .body_str("product_id")
        .and_then(|id| shop.shop.product(id))
    else {
        return not_found("product");
    };
    let quantity = req.body_f64("quantity").unwrap_or(1.0).max(1.0).floor();
    let subtotal = cents(shop.current_price(p) * quantity);
    let Some(coupon) = shop.shop.coupons.iter().find(|c| c.code == code) else {
        return Reply::ok(
            json!({"valid": false, "reason": "unknown or expired code", "subtotal": subtotal}),
        );
    };
    if subtotal < coupon.min_total {
        return Reply::ok(
            json!({"valid": false, "reason": format!("needs a subtotal of at least ${:.2}", coupon.min_total), "subtotal": subtotal}),
        );
    }
    if !coupon.categories.is_empty() && !coupon.categories.contains(&p.category) {
        return Reply::ok(
            json!({"valid": false, "reason": "not valid for this category", "subtotal": subtotal}),
        );
    }
    let discount = cents(subtotal * coupon.percent_off / 100.0);
    Reply::ok(json!({
        "valid": true,
        "code": coupon.code,
        "subtotal": subtotal,
        "discount": discount,
        "total": cents(subtotal - discount),
    }))
}

/// Competitors' prices, the same for a product each time.
fn competitors(p: &Product, ours: f64) -> Vec<(&'static str, f64)> {
    let seed = Sha256::digest(p.id.as_bytes());
    ["TrailMart", "RunDepot", "PeakOutfitters"]
        .iter()
        .zip(seed.iter())
        .map(|(name, b)| (*name, cents(ours * (0.88 + f64::from(*b % 25) / 100.0))))
        .collect()
}

/// `GET /pricing/products/{id}/competitors`
pub fn competitor_prices(shop: &Commerce, id: &str) -> Reply {
    let Some(p) = shop.shop.product(id) else {
        return not_found("product");
    };
    let ours = shop.current_price(p);
    let list: Vec<Value> = competitors(p, ours)
        .into_iter()
        .map(|(name, price)| json!({"competitor": name, "price": price}))
        .collect();
    Reply::ok(json!({"product_id": p.id, "our_price": ours, "competitors": list}))
}

/// `POST /pricing/price-match` with `{"product_id", "competitor", "competitor_price"}`:
/// approved for a known competitor's price no more than 15 % below ours.
pub fn price_match(shop: &Commerce, req: &Req) -> Reply {
    let Some(p) = req
        .body_str("product_id")
        .and_then(|id| shop.shop.product(id))
    else {
        return not_found("product");
    };
    let Some(theirs) = req.body_f64("competitor_price").filter(|v| *v > 0.0) else {
        return bad_request("`competitor_price` must be a positive amount");
    };
    let competitor = req.body_str("competitor").unwrap_or_default();
    let ours = shop.current_price(p);
    let known = competitors(p, ours)
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(competitor.trim()));
    let approved = known && theirs >= ours * 0.85 && theirs < ours;
    let reason = if !known {
        "we match TrailMart, RunDepot and PeakOutfitters only"
    } else if theirs >= ours {
        "our price is already lower"
    } else if !approved {
        "more than 15% below our price: a manager reviews it"
    } else {
        "matched"
    };
    Reply::ok(json!({
        "product_id": p.id,
        "approved": approved,
        "our_price": ours,
        "matched_price": if approved { theirs } else { ours },
        "reason": reason,
    }))
}

/// `GET /pricing/products/{id}/bulk-quote?quantity=`: 5 % from 10 units, 10 % from 50,
/// 15 % from 200.
pub fn bulk_quote(shop: &Commerce, id: &str, req: &Req) -> Reply {
    let Some(p) = shop.shop.product(id) else {
        return not_found("product");
    };
    let Some(quantity) = req.query_f64("quantity").filter(|q| *q >= 1.0) else {
        return bad_request("`quantity` must be at least 1");
    };
    let quantity = quantity.floor();
    let percent = match quantity as u64 {
        200.. => 15.0,
        50.. => 10.0,
        10.. => 5.0,
        _ => 0.0,
    };
    let unit = shop.current_price(p);
    let subtotal = cents(unit * quantity);
    let discount = cents(subtotal * percent / 100.0);
    Reply::ok(json!({
        "product_id": p.id,
        "quantity": quantity,
        "unit_price": unit,
        "discount_percent": percent,
        "total": cents(subtotal - discount),
        "valid_days": 14,
    }))
}
