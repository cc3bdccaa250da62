//! The orders backend and the shop's other services: orders (lookup, list by customer
//! email, cancel, change address), returns, refunds, exchanges, purchase orders,
//! shipping estimates and tracking, loyalty points, gift cards, customer profiles, stores,
//! warranty claims and escalations to a person. Writes change the shop's state.

use serde_json::{Value, json};

use super::data::{Order, cents};
use super::{Commerce, Reply, Req, bad_request, conflict, not_found};

fn order_view(shop: &Commerce, o: &Order) -> Value {
    let customer = shop.customer(&o.customer_id);
    json!({
        "id": o.id,
        "status": o.status,
        "placed_at": o.placed_at,
        "items": o.items,
        "total": o.total,
        "refunded": shop.refunded(&o.id),
        "shipping_address": o.shipping_address,
        "tracking_number": o.tracking_number,
        "carrier": o.carrier,
        "customer": customer.map(|c| json!({"id": c.id, "name": c.name, "email": c.email, "phone": c.phone})),
    })
}

/// `GET /orders/{id}`
pub fn lookup(shop: &Commerce, id: &str) -> Reply {
    match shop.order(id) {
        Some(o) => Reply::ok(order_view(shop, &o)),
        None => not_found("order"),
    }
}

/// `GET /orders?email=`: the orders of the customer with that email.
pub fn list(shop: &Commerce, req: &Req) -> Reply {
    let Some(email) = req.query("email").map(str::trim).filter(|e| !e.is_empty()) else {
        return bad_request("`email` is required");
    };
    let Some(customer) = shop.customer_by_email(email) else {
        return not_found("customer");
    };
    let orders: Vec<Value> = shop
        .orders_of(&customer.id)
        .iter()
        .map(|o| json!({"id": o.id, "status": o.status, "placed_at": o.placed_at, "total": o.total, "items": o.items.len()}))
        .collect();
    Reply::ok(json!({"customer_id": customer.id, "orders": orders}))
}

/// `POST /orders/{id}/cancel`: only orders still processing.
pub fn cancel(shop: &Commerce, id: &str) -> Reply {
    shop.update_order(id, |o| {
        if o.status != "processing" {
            return Err(conflict(&format!(
                "an order that is {} cannot be cancelled",
                o.status
            )));
        }
        o.status = "cancelled".into();
        Ok(json!({"id": o.id, "status": o.status, "refund_due": o.total}))
    })
}

/// `PUT /orders/{id}/shipping-address` with `{"address"}`: only before shipping.
pub fn change_address(shop: &Commerce, id: &str, req: &Req) -> Reply {
    let Some(address) = req
        .body_str("address")
        .map(str::trim)
        .filter(|a| a.len() >= 8)
    else {
        return bad_request("`address` must be a full postal address");
    };
    let address = address.to_string();
    shop.update_order(id, move |o| {
        if o.status != "processing" {
            return Err(conflict("the order has shipped; its address cannot change"));
        }
        o.shipping_address = address;
        Ok(json!({"id": o.id, "shipping_address": o.shipping_address, "status": o.status}))
    })
}

/// `POST /returns` with `{"order_id", "product_id", "reason"}`: delivered orders.
pub fn create_return(shop: &Commerce, req: &Req) -> Reply {
    let Some(order) = req.body_str("order_id").and_then(|id| shop.order(id)) else {
        return not_found("order");
    };
    let product = req.body_str("product_id").unwrap_or_default();
    if !order
        .items
        .iter()
        .any(|i| i.product_id.eq_ignore_ascii_case(product))
    {
        return bad_request("the product is not part of this order");
    }
    if order.status != "delivered" {
        return conflict("only delivered orders can be returned");
    }
    let id = shop.next_id("RMA");
    shop.count_write("create_return");
    Reply::created(json!({
        "return_id": id,
        "order_id": order.id,
        "product_id": product,
        "status": "label_sent",
        "label_url": format!("https://returns.acme-outdoor.example/labels/{id}.pdf"),
    }))
}

/// `POST /refunds` with `{"order_id", "amount", "reason"}`: at most what is left of the
/// order's total.
pub fn refund(shop: &Commerce, req: &Req) -> Reply {
    let Some(order) = req.body_str("order_id").and_then(|id| shop.order(id)) else {
        return not_found("order");
    };
    let Some(amount) = req.body_f64("amount").filter(|a| *a > 0.0) else {
        return bad_request("`amount` must be a positive amount in USD");
    };
    let left = cents(order.total - shop.refunded(&order.id));
    if amount > left + 1e-9 {
        return conflict(&format!(
            "at most ${left:.2} of this order can still be refunded"
        ));
    }
    shop.add_refund(&order.id, amount);
    let id = shop.next_id("RF");
    shop.count_write("issue_refund");
    Reply::created(json!({
        "refund_id": id,
        "order_id": order.id,
        "amount": cents(amount),
        "currency": "USD",
        "status": "issued",
    }))
}

/// `POST /exchanges` with `{"order_id", "product_id", "new_size", "new_width"}`.
pub fn exchange(shop: &Commerce, req: &Req) -> Reply {
    let Some(order) = req.body_str("order_id").and_then(|id| shop.order(id)) else {
        return not_found("order");
    };
    let product_id = req.body_str("product_id").unwrap_or_default();
    if !order
        .items
        .iter()
        .any(|i| i.product_id.eq_ignore_ascii_case(product_id))
    {
        return bad_request("the product is not part of this order");
    }
    let Some(product) = shop.shop.product(product_id) else {
        return not_found("product");
    };
    let size = req.body_str("new_size").unwrap_or_default();
    let width = req.body_str("new_width");
    let Some(variant) = product.variant(size, width) else {
        return bad_request("the product has no such size or width");
    };
    if variant.stock == 0 {
        return conflict("the new size is out of stock");
    }
    let id = shop.next_id("EX");
    shop.count_write("exchange_item");
    Reply::created(json!({
        "exchange_id": id,
        "order_id": order.id,
        "product_id": product.id,
        "new_size": variant.size,
        "new_width": variant.width,
        "status": "replacement_reserved",
    }))
}

/// `POST /purchase-orders` with `{"supplier", "product_id", "quantity", "unit_cost_usd"}`.
pub fn purchase_order(shop: &Commerce, req: &Req) -> Reply {
    let supplier = req.body_str("supplier").map(str::trim).unwrap_or_default();
    if supplier.is_empty() {
        return bad_request("`supplier` is required");
    }
    let Some(product) = req
        .body_str("product_id")
        .and_then(|id| shop.shop.product(id))
    else {
        return not_found("product");
    };
    let (Some(quantity), Some(unit)) = (
        req.body_f64("quantity").filter(|q| *q >= 1.0),
        req.body_f64("unit_cost_usd").filter(|c| *c > 0.0),
    ) else {
        return bad_request("`quantity` and `unit_cost_usd` must be positive");
    };
    let id = shop.next_id("PO");
    shop.count_write("create_purchase_order");
    Reply::created(json!({
        "purchase_order_id": id,
        "supplier": supplier,
        "product_id": product.id,
        "quantity": quantity.floor(),
        "total_usd": cents(quantity.floor() * unit),
        "status": "sent_to_supplier",
    }))
}

/// `GET /shipping/estimate?postal_code=&product_id=`: zone by the first digit of a US
/// ZIP code, from the Portland warehouse.
pub fn estimate(req: &Req) -> Reply {
    let Some(zip) = req
        .query("postal_code")
        .map(str::trim)
        .filter(|z| z.len() == 5 && z.bytes().all(|b| b.is_ascii_digit()))
    else {
        return bad_request("`postal_code` must be a 5-digit US ZIP code");
    };
    let zone = match zip.as_bytes().first() {
        Some(b'9' | b'8') => 1,
        Some(b'5' | b'6' | b'7') => 2,
        _ => 3,
    };
    Reply::ok(json!({
        "postal_code": zip,
        "options": [
            {"service": "standard", "days": 2 + zone * 2, "cost": if zone == 1 { 0.0 } else { 5.99 }},
            {"service": "express", "days": zone, "cost": 9.99 + f64::from(zone) * 5.0},
        ],
        "free_standard_over": 75.0,
    }))
}

/// `GET /shipping/tracking/{number}`
pub fn track(shop: &Commerce, number: &str) -> Reply {
    let Some(order) = shop.order_by_tracking(number) else {
        return not_found("shipment");
    };
    let mut events = vec![json!({"date": order.placed_at, "event": "label created"})];
    if order.status == "shipped" || order.status == "delivered" {
        events.push(json!({"event": "in transit", "location": "Portland, OR hub"}));
    }
    if order.status == "delivered" {
        events.push(json!({"event": "delivered", "location": "front door"}));
    }
    Reply::ok(json!({
        "tracking_number": order.tracking_number,
        "carrier": order.carrier,
        "order_id": order.id,
        "status": order.status,
        "events": events,
    }))
}

/// `GET /loyalty/{customer_id}`
pub fn loyalty(shop: &Commerce, id: &str) -> Reply {
    match shop.customer(id) {
        Some(c) => Reply::ok(json!({
            "customer_id": c.id,
            "points": c.loyalty_points,
            "tier": c.tier,
            "worth_usd": cents(c.loyalty_points as f64 / 100.0),
        })),
        None => not_found("customer"),
    }
}

/// `POST /loyalty/{customer_id}/redeem` with `{"points"}`: 100 points are $1.
pub fn redeem(shop: &Commerce, id: &str, req: &Req) -> Reply {
    let Some(points) = req.body_f64("points").filter(|p| *p >= 100.0) else {
        return bad_request("`points` must be at least 100");
    };
    let points = points.floor() as u64;
    shop.update_customer(id, |c| {
        if c.loyalty_points < points {
            return Err(conflict("not enough points"));
        }
        c.loyalty_points -= points;
        Ok(json!({
            "customer_id": c.id,
            "redeemed": points,
            "reward_usd": cents(points as f64 / 100.0),
            "points_left": c.loyalty_points,
        }))
    })
}

/// `GET /gift-cards/{code}`
pub fn gift_card(shop: &Commerce, code: &str) -> Reply {
    match shop
        .shop
        .gift_cards
        .iter()
        .find(|g| g.code.eq_ignore_ascii_case(code.trim()))
    {
        Some(g) => Reply::ok(json!({"code": g.code, "balance": g.balance, "currency": "USD"})),
        None => not_found("gift card"),
    }
}

/// `PATCH /customers/{id}` with any of `{"name", "email", "phone", "address"}`.
pub fn update_profile(shop: &Commerce, id: &str, req: &Req) -> Reply {
    let fields = ["name", "email", "phone", "address"];
    let changes: Vec<(String, String)> = fields
        .iter()
        .filter_map(|f| {
            req.body_str(f)
                .map(|v| (f.to_string(), v.trim().to_string()))
        })
        .collect();
    if changes.is_empty() {
        return bad_request("nothing to change: send name, email, phone or address");
    }
    shop.update_customer(id, move |c| {
        for (field, value) in &changes {
            match field.as_str() {
                "name" => c.name = value.clone(),
                "email" => c.email = value.clone(),
                "phone" => c.phone = value.clone(),
                _ => c.address = value.clone(),
            }
        }
        let changed: Vec<&str> = changes.iter().map(|(f, _)| f.as_str()).collect();
        Ok(json!({"customer_id": c.id, "updated": changed}))
    })
}

/// `GET /stores?city=&postal_code=&state=`
pub fn stores(shop: &Commerce, req: &Req) -> Reply {
    let city = req.query("city").map(str::trim);
    let state = req.query("state").map(str::trim);
    let zip = req.query("postal_code").map(str::trim);
    let mut found: Vec<Value> = shop
        .shop
        .stores
        .iter()
        .filter(|s| city.is_none_or(|c| s.city.eq_ignore_ascii_case(c)))
        .filter(|s| state.is_none_or(|st| s.state.eq_ignore_ascii_case(st)))
        .filter(|s| zip.is_none_or(|z| s.postal_code.get(..2) == z.get(..2)))
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .collect();
    if found.is_empty() && (city.is_some() || zip.is_some() || state.is_some()) {
        found = shop
            .shop
            .stores
            .iter()
            .take(3)
            .map(|s| serde_json::to_value(s).unwrap_or_default())
            .collect();
        return Reply::ok(json!({"exact": false, "stores": found}));
    }
    Reply::ok(json!({"exact": true, "stores": found}))
}

/// `POST /warranty-claims` with `{"order_id", "product_id", "description"}`.
pub fn warranty(shop: &Commerce, req: &Req) -> Reply {
    let Some(order) = req.body_str("order_id").and_then(|id| shop.order(id)) else {
        return not_found("order");
    };
    if req
        .body_str("description")
        .is_none_or(|d| d.trim().len() < 5)
    {
        return bad_request("`description` must say what is wrong");
    }
    let id = shop.next_id("WC");
    shop.count_write("file_warranty_claim");
    Reply::created(
        json!({"claim_id": id, "order_id": order.id, "status": "under_review", "decision_within_days": 5}),
    )
}

/// `POST /escalations` with `{"summary", "priority"}`.
pub fn escalate(shop: &Commerce, req: &Req) -> Reply {
    if req.body_str("summary").is_none_or(|s| s.trim().is_empty()) {
        return bad_request("`summary` is required");
    }
    let priority = req.body_str("priority").unwrap_or("normal");
    let id = shop.next_id("TK");
    shop.count_write("escalate_to_human");
    let wait = if priority == "urgent" { 2 } else { 15 };
    Reply::created(json!({"ticket_id": id, "priority": priority, "expected_wait_minutes": wait}))
}
