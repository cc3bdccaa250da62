//! The demo commerce backends (`warden mock-commerce`, and in process for a tool backend
//! with `kind: mock`): catalog search over HTTP JSON, inventory as a GraphQL endpoint,
//! pricing with demand- and stock-based rules, orders, returns and refunds, and the rest
//! of the demo tool registry's services, over the shop in `examples/commerce/`.
//!
//! Writes honour an `Idempotency-Key` header (a repeat gets the first answer and changes
//! nothing). `GET /_commerce/stats` counts the writes executed and
//! `GET /_commerce/requests` shows the last requests received, so tests can check what
//! reached the backend.

mod catalog;
pub mod cli;
mod data;
mod inventory;
mod orders;
mod pricing;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

pub use data::Shop;
use data::{Customer, Order, Product};

use super::{MockRequest, json_response};
use crate::http_client::UpstreamBody;

/// Requests kept for `GET /_commerce/requests`.
const KEPT_REQUESTS: usize = 64;

/// A backend answer: status and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body,
        }
    }

    fn created(body: Value) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            body,
        }
    }

    fn error(status: StatusCode, code: &str, message: &str) -> Reply {
        Reply {
            status,
            body: json!({"error": {"code": code, "message": message}}),
        }
    }
}

fn not_found(what: &str) -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no such {what}"),
    )
}

fn bad_request(message: &str) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn conflict(message: &str) -> Reply {
    Reply::error(StatusCode::CONFLICT, "conflict", message)
}

/// A request as the handlers read it.
pub struct Req {
    query: Vec<(String, String)>,
    body: Map<String, Value>,
}

impl Req {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn query_f64(&self, name: &str) -> Option<f64> {
        self.query(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    }

    fn body_str(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    fn body_f64(&self, name: &str) -> Option<f64> {
        match self.body.get(name) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|v: &f64| v.is_finite())
    }
}

/// What the shop's writes changed.
#[derive(Default)]
struct State {
    prices: HashMap<String, f64>,
    orders: Vec<Order>,
    customers: Vec<Customer>,
    refunded: HashMap<String, f64>,
    next_id: u64,
    /// `Idempotency-Key` → the first answer.
    replays: HashMap<String, Reply>,
    /// Writes executed, by operation.
    writes: BTreeMap<String, u64>,
    requests: u64,
    log: VecDeque<Value>,
}

/// The demo shop's backends.
pub struct Commerce {
    shop: Arc<Shop>,
    inventory: inventory::InventorySchema,
    state: Mutex<State>,
}

impl Commerce {
    pub fn new(shop: Shop) -> Commerce {
        let shop = Arc::new(shop);
        let state = State {
            orders: shop.orders.clone(),
            customers: shop.customers.clone(),
            next_id: 1000,
            ..State::default()
        };
        Commerce {
            inventory: inventory::schema(shop.clone()),
            shop,
            state: Mutex::new(state),
        }
    }

    /// The shop shipped in `examples/commerce/catalog.json`.
    pub fn demo() -> anyhow::Result<Commerce> {
        Ok(Commerce::new(Shop::parse(data::EMBEDDED)?))
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn price_override(&self, id: &str) -> Option<f64> {
        self.with_state(|s| s.prices.get(id).copied())
    }

    fn set_price(&self, id: &str, price: f64) {
        self.with_state(|s| s.prices.insert(id.to_string(), price));
    }

    /// The price a shopper pays now: a manual override, else the pricing rules'.
    fn current_price(&self, p: &Product) -> f64 {
        self.price_override(&p.id)
            .unwrap_or_else(|| pricing::rule_price(p))
    }

    fn order(&self, id: &str) -> Option<Order> {
        self.with_state(|s| {
            s.orders
                .iter()
                .find(|o| o.id.eq_ignore_ascii_case(id.trim()))
                .cloned()
        })
    }

    fn order_by_tracking(&self, number: &str) -> Option<Order> {
        self.with_state(|s| {
            s.orders
                .iter()
                .find(|o| o.tracking_number.as_deref() == Some(number.trim()))
                .cloned()
        })
    }

    fn orders_of(&self, customer: &str) -> Vec<Order> {
        self.with_state(|s| {
            s.orders
                .iter()
                .filter(|o| o.customer_id == customer)
                .cloned()
                .collect()
        })
    }

    fn update_order(&self, id: &str, f: impl FnOnce(&mut Order) -> Result<Value, Reply>) -> Reply {
        self.with_state(|s| {
            let Some(order) = s
                .orders
                .iter_mut()
                .find(|o| o.id.eq_ignore_ascii_case(id.trim()))
            else {
                return not_found("order");
            };
            match f(order) {
                Ok(body) => {
                    *s.writes.entry("order_update".into()).or_default() += 1;
                    Reply::ok(body)
                }
                Err(reply) => reply,
            }
        })
    }

    fn customer(&self, id: &str) -> Option<Customer> {
        self.with_state(|s| {
            s.customers
                .iter()
                .find(|c| c.id.eq_ignore_ascii_case(id.trim()))
                .cloned()
        })
    }

    fn customer_by_email(&self, email: &str) -> Option<Customer> {
        self.with_state(|s| {
            s.customers
                .iter()
                .find(|c| c.email.eq_ignore_ascii_case(email))
                .cloned()
        })
    }

    fn update_customer(
        &self,
        id: &str,
        f: impl FnOnce(&mut Customer) -> Result<Value, Reply>,
    ) -> Reply {
        self.with_state(|s| {
            let Some(customer) = s
                .customers
                .iter_mut()
                .find(|c| c.id.eq_ignore_ascii_case(id.trim()))
            else {
                return not_found("customer");
            };
            match f(customer) {
                Ok(body) => {
                    *s.writes.entry("customer_update".into()).or_default() += 1;
                    Reply::ok(body)
                }
                Err(reply) => reply,
            }
        })
    }

    fn refunded(&self, order: &str) -> f64 {
        self.with_state(|s| s.refunded.get(order).copied().unwrap_or(0.0))
    }

    fn add_refund(&self, order: &str, amount: f64) {
        self.with_state(|s| *s.refunded.entry(order.to_string()).or_default() += amount);
    }

    fn next_id(&self, prefix: &str) -> String {
        self.with_state(|s| {
            s.next_id += 1;
            format!("{prefix}-{}", s.next_id)
        })
    }

    fn count_write(&self, operation: &str) {
        self.with_state(|s| *s.writes.entry(operation.into()).or_default() += 1);
    }

    /// Serves one request.
    pub fn handle(&self, req: MockRequest<'_>) -> Response<UpstreamBody> {
        let (path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
        let method = req.method.clone();
        self.remember(&req, path);
        match (&method, path) {
            (&Method::GET, "/_commerce/stats") => {
                let stats =
                    self.with_state(|s| json!({"requests": s.requests, "writes": s.writes}));
                return json_response(StatusCode::OK, &stats);
            }
            (&Method::GET, "/_commerce/requests") => {
                let log =
                    self.with_state(|s| Value::from(s.log.iter().cloned().collect::<Vec<_>>()));
                return json_response(StatusCode::OK, &log);
            }
            _ => {}
        }
        let body = if req.body.is_empty() {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&req.body) {
                Ok(Value::Object(m)) => m,
                _ => return reply(bad_request("the body must be a JSON object")),
            }
        };
        if path == "/inventory/graphql" || path == "/graphql" {
            return self.graphql(&method, &req.body);
        }
        let parsed = Req {
            query: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            body,
        };
        let key = (method != Method::GET)
            .then(|| req.headers.get("idempotency-key"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(|k| format!("{method} {path} {k}"));
        if let Some(stored) = key
            .as_ref()
            .and_then(|k| self.with_state(|s| s.replays.get(k).cloned()))
        {
            return reply(stored);
        }
        let answer = self.route(&method, path, &parsed);
        if let Some(key) = key
            && answer.status.is_success()
        {
            self.with_state(|s| s.replays.insert(key, answer.clone()));
        }
        reply(answer)
    }

    fn route(&self, method: &Method, path: &str, req: &Req) -> Reply {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let decoded: Vec<String> = segments.iter().map(|s| percent_decode(s)).collect();
        let seg: Vec<&str> = decoded.iter().map(String::as_str).collect();
        match (method, seg.as_slice()) {
            (&Method::GET, ["catalog", "search"]) => catalog::search(self, req),
            (&Method::GET, ["catalog", "products", id]) => catalog::product(self, id),
            (&Method::GET, ["catalog", "products", id, "reviews"]) => catalog::reviews(self, id),
            (&Method::GET, ["catalog", "recommendations"]) => catalog::recommendations(self, req),
            (&Method::GET, ["catalog", "size-guide"]) => catalog::size_guide(req),
            (&Method::GET, ["pricing", "products", id]) => pricing::price(self, id, req),
            (&Method::PUT, ["pricing", "products", id]) => pricing::update(self, id, req),
            (&Method::GET, ["pricing", "products", id, "competitors"]) => {
                pricing::competitor_prices(self, id)
            }
            (&Method::GET, ["pricing", "products", id, "bulk-quote"]) => {
                pricing::bulk_quote(self, id, req)
            }
            (&Method::POST, ["pricing", "coupons", "apply"]) => pricing::apply_coupon(self, req),
            (&Method::POST, ["pricing", "price-match"]) => pricing::price_match(self, req),
            (&Method::GET, ["orders"]) => orders::list(self, req),
            (&Method::GET, ["orders", id]) => orders::lookup(self, id),
            (&Method::POST, ["orders", id, "cancel"]) => orders::cancel(self, id),
            (&Method::PUT, ["orders", id, "shipping-address"]) => {
                orders::change_address(self, id, req)
            }
            (&Method::POST, ["returns"]) => orders::create_return(self, req),
            (&Method::POST, ["refunds"]) => orders::refund(self, req),
            (&Method::POST, ["exchanges"]) => orders::exchange(self, req),
            (&Method::POST, ["purchase-orders"]) => orders::purchase_order(self, req),
            (&Method::GET, ["shipping", "estimate"]) => orders::estimate(req),
            (&Method::GET, ["shipping", "tracking", number]) => orders::track(self, number),
            (&Method::GET, ["loyalty", id]) => orders::loyalty(self, id),
            (&Method::POST, ["loyalty", id, "redeem"]) => orders::redeem(self, id, req),
            (&Method::GET, ["gift-cards", code]) => orders::gift_card(self, code),
            (&Method::PATCH, ["customers", id]) => orders::update_profile(self, id, req),
            (&Method::GET, ["stores"]) => orders::stores(self, req),
            (&Method::POST, ["warranty-claims"]) => orders::warranty(self, req),
            (&Method::POST, ["escalations"]) => orders::escalate(self, req),
            _ => Reply::error(StatusCode::NOT_FOUND, "unknown_path", "no such endpoint"),
        }
    }

    fn graphql(&self, method: &Method, body: &Bytes) -> Response<UpstreamBody> {
        if method != Method::POST {
            return reply(Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "POST the GraphQL request",
            ));
        }
        let request: async_graphql::Request = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(_) => return reply(bad_request("not a GraphQL request")),
        };
        // The schema resolves synchronously over in-memory data: its future never waits.
        let response = futures_util::FutureExt::now_or_never(self.inventory.execute(request));
        match response.map(|r| serde_json::to_value(&r)) {
            Some(Ok(body)) => reply(Reply::ok(body)),
            _ => reply(Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the GraphQL request could not be answered",
            )),
        }
    }

    fn remember(&self, req: &MockRequest<'_>, path: &str) {
        let headers: Map<String, Value> = req
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or("<binary>"))))
            .collect();
        let body = serde_json::from_slice::<Value>(&req.body).unwrap_or(Value::Null);
        let entry = json!({
            "method": req.method.as_str(),
            "path": path,
            "uri": req.path,
            "headers": headers,
            "body": body,
        });
        if path.starts_with("/_commerce/") {
            return;
        }
        self.with_state(|s| {
            s.requests += 1;
            s.log.push_back(entry);
            while s.log.len() > KEPT_REQUESTS {
                s.log.pop_front();
            }
        });
    }
}

fn reply(r: Reply) -> Response<UpstreamBody> {
    json_response(r.status, &r.body)
}

/// Decodes `%XX` escapes of a path segment; a malformed escape is kept as it is.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use http_body_util::BodyExt;

    async fn call(
        c: &Commerce,
        method: Method,
        path: &str,
        body: Value,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut headers = HeaderMap::new();
        if let Some(k) = key {
            headers.insert("idempotency-key", k.parse().unwrap());
        }
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let resp = c.handle(MockRequest {
            method: &method,
            path,
            headers: &headers,
            body,
        });
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn the_shop_answers_search_graphql_and_writes_once_per_key() {
        let c = Commerce::demo().unwrap();
        assert!(c.shop.products.len() >= 200);
        let (s, found) = call(
            &c,
            Method::GET,
            "/catalog/search?q=running%20shoes&size=10&width=wide&max_price=120",
            Value::Null,
            None,
        )
        .await;
        assert_eq!(s, 200);
        let results = found["results"].as_array().unwrap();
        assert!(!results.is_empty());
        for r in results {
            assert!(r["price"].as_f64().unwrap() <= 120.0);
            let p = c.shop.product(r["id"].as_str().unwrap()).unwrap();
            assert!(p.variant("10", Some("wide")).unwrap().stock > 0, "{}", p.id);
        }
        let id = results[0]["id"].as_str().unwrap();
        let query = json!({"query": "query($id: String!) { inventory(productId: $id, size: \"10\", width: \"wide\") { totalAvailable variants { inStock } } }", "variables": {"id": id}});
        let (s, inv) = call(&c, Method::POST, "/inventory/graphql", query, None).await;
        assert_eq!(s, 200);
        assert!(
            inv["data"]["inventory"]["totalAvailable"].as_u64().unwrap() > 0,
            "{inv}"
        );
        let bad = json!({"query": "{ nosuchfield }"});
        let (_, err) = call(&c, Method::POST, "/inventory/graphql", bad, None).await;
        assert!(err["errors"].as_array().is_some_and(|e| !e.is_empty()));

        let order = c
            .shop
            .orders
            .iter()
            .find(|o| o.total > 30.0)
            .unwrap()
            .id
            .clone();
        let refund = json!({"order_id": order, "amount": 10.0, "reason": "damaged"});
        let (s1, first) = call(&c, Method::POST, "/refunds", refund.clone(), Some("k1")).await;
        let (s2, again) = call(&c, Method::POST, "/refunds", refund.clone(), Some("k1")).await;
        assert_eq!((s1, s2), (201, 201));
        assert_eq!(first, again);
        let (_, stats) = call(&c, Method::GET, "/_commerce/stats", Value::Null, None).await;
        assert_eq!(stats["writes"]["issue_refund"], 1);
        let (s3, _) = call(&c, Method::POST, "/refunds", refund, Some("k2")).await;
        assert_eq!(s3, 201);
        assert!((c.refunded(&order) - 20.0).abs() < 1e-9);
    }
}
