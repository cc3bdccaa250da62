//! The catalog backend: product search (words of the query matched against names,
//! descriptions and tags, filtered by category, price, size, width and stock), product
//! pages, reviews, recommendations and size guides. Prices are the pricing backend's
//! current prices, so search and `get_price` agree.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::data::{Product, normalize_width};
use super::{Commerce, Reply, Req, not_found};

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "any", "are", "come", "do", "does", "for", "have", "i", "in", "is", "me",
    "my", "need", "of", "on", "or", "pair", "please", "show", "some", "the", "these", "they",
    "this", "to", "under", "want", "with", "you", "size", "width", "looking", "find",
];

/// Query words, lowercased, singular, with shop synonyms folded.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| {
            let w = match w.as_str() {
                "sneakers" | "sneaker" | "trainers" | "trainer" | "runners" | "jogging" => {
                    "running".to_string()
                }
                "shoes" | "shoe" => "shoe".to_string(),
                "boots" => "boot".to_string(),
                "waterproof" | "gore-tex" | "gtx" => "waterproof".to_string(),
                other => other.to_string(),
            };
            match w.strip_suffix('s') {
                Some(stem) if stem.len() > 3 && !w.ends_with("ss") => stem.to_string(),
                _ => w,
            }
        })
        .collect()
}

fn haystack(p: &Product) -> Vec<String> {
    let text = format!(
        "{} {} {} {} {} {}",
        p.name,
        p.brand,
        p.category.replace('-', " "),
        p.description,
        p.tags.join(" "),
        p.gender
    );
    let mut w = words(&text);
    if p.category.ends_with("-shoes") || p.category == "hiking-boots" {
        w.push("shoe".into());
    }
    w
}

/// How many of the query's words the product matches (0 when none).
fn score(query: &[String], p: &Product) -> usize {
    let hay = haystack(p);
    query
        .iter()
        .filter(|q| {
            hay.iter()
                .any(|h| h == *q || (q.len() > 4 && h.starts_with(q.as_str())))
        })
        .count()
}

/// The sizes in stock, of `width` when given.
fn sizes_in_stock(p: &Product, width: Option<&str>) -> Vec<String> {
    p.variants
        .iter()
        .filter(|v| v.stock > 0)
        .filter(|v| match (width, &v.width) {
            (Some(w), Some(have)) => *have == normalize_width(w),
            _ => true,
        })
        .map(|v| v.size.clone())
        .collect()
}

fn summary(shop: &Commerce, p: &Product, width: Option<&str>) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "brand": p.brand,
        "category": p.category,
        "gender": p.gender,
        "price": shop.current_price(p),
        "currency": "USD",
        "rating": p.rating,
        "review_count": p.review_count,
        "widths": p.widths,
        "sizes_in_stock": sizes_in_stock(p, width),
    })
}

/// `GET /catalog/search?q=&category=&max_price=&min_price=&size=&width=&gender=&in_stock=&limit=`
pub fn search(shop: &Commerce, req: &Req) -> Reply {
    let q = words(req.query("q").unwrap_or_default());
    let category = req.query("category").map(|c| c.to_lowercase());
    let max_price = req.query_f64("max_price");
    let min_price = req.query_f64("min_price");
    let size = req.query("size");
    let width = req.query("width");
    let gender = req.query("gender").map(|g| g.to_lowercase());
    let in_stock = req.query("in_stock").is_none_or(|v| v != "false");
    let limit = req
        .query_f64("limit")
        .map_or(10, |l| l.clamp(1.0, 50.0) as usize);
    let mut hits: Vec<(usize, &Product)> = shop
        .shop
        .products
        .iter()
        .filter(|p| category.as_deref().is_none_or(|c| p.category.contains(c)))
        .filter(|p| {
            gender
                .as_deref()
                .is_none_or(|g| p.gender == g || p.gender == "unisex")
        })
        .filter(|p| {
            let price = shop.current_price(p);
            max_price.is_none_or(|m| price <= m) && min_price.is_none_or(|m| price >= m)
        })
        .filter(|p| match size {
            Some(size) => p
                .variant(size, width)
                .is_some_and(|v| !in_stock || v.stock > 0),
            None => {
                width.is_none_or(|w| p.widths.contains(&normalize_width(w)))
                    && (!in_stock || p.total_stock() > 0)
            }
        })
        .map(|p| (score(&q, p), p))
        .filter(|(s, _)| q.is_empty() || *s > 0)
        .collect();
    hits.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.rating.total_cmp(&a.1.rating))
            .then(a.1.id.cmp(&b.1.id))
    });
    let total = hits.len();
    let results: Vec<Value> = hits
        .iter()
        .take(limit)
        .map(|(_, p)| summary(shop, p, width))
        .collect();
    Reply::ok(json!({"total": total, "results": results}))
}

/// `GET /catalog/products/{id}`
pub fn product(shop: &Commerce, id: &str) -> Reply {
    let Some(p) = shop.shop.product(id) else {
        return not_found("product");
    };
    let mut v = summary(shop, p, None);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("description".into(), json!(p.description));
        obj.insert("colors".into(), json!(p.colors));
        obj.insert("tags".into(), json!(p.tags));
        obj.insert("list_price".into(), json!(p.price));
    }
    Reply::ok(v)
}

const REVIEW_LINES: &[(&str, u8)] = &[
    (
        "Fits true to size and the cushioning holds up after 300 miles.",
        5,
    ),
    (
        "Runs about half a size small; order up if you are between sizes.",
        4,
    ),
    ("Great grip on wet pavement, a bit warm in summer.", 4),
    (
        "The wide version finally gives my toes room. Very comfortable.",
        5,
    ),
    ("Good value, but the laces are too short.", 3),
    ("Lighter than it looks and dries quickly.", 5),
    (
        "Started squeaking after two weeks; support replaced them quickly.",
        3,
    ),
    ("Exactly as described, would buy again.", 4),
];

const REVIEWERS: &[&str] = &[
    "Kim R.",
    "Alex P.",
    "Jordan M.",
    "Sam T.",
    "Chris L.",
    "Robin K.",
];

/// `GET /catalog/products/{id}/reviews`: three reviews, the same for a product each time.
pub fn reviews(shop: &Commerce, id: &str) -> Reply {
    let Some(p) = shop.shop.product(id) else {
        return not_found("product");
    };
    let seed = Sha256::digest(p.id.as_bytes());
    let reviews: Vec<Value> = seed
        .iter()
        .take(3)
        .enumerate()
        .filter_map(|(i, b)| {
            let (text, stars) = REVIEW_LINES.get(usize::from(*b) % REVIEW_LINES.len())?;
            let who = REVIEWERS.get((usize::from(*b) + i) % REVIEWERS.len())?;
            Some(json!({"author": who, "rating": stars, "text": text}))
        })
        .collect();
    Reply::ok(json!({
        "product_id": p.id,
        "rating": p.rating,
        "review_count": p.review_count,
        "reviews": reviews,
    }))
}

/// `GET /catalog/recommendations?product_id=&q=&limit=`: in-stock products of the same
/// category (or matching the words), best rated first.
pub fn recommendations(shop: &Commerce, req: &Req) -> Reply {
    let anchor = req.query("product_id").and_then(|id| shop.shop.product(id));
    if req.query("product_id").is_some() && anchor.is_none() {
        return not_found("product");
    }
    let q = words(req.query("q").unwrap_or_default());
    let limit = req
        .query_f64("limit")
        .map_or(5, |l| l.clamp(1.0, 20.0) as usize);
    let mut picks: Vec<&Product> = shop
        .shop
        .products
        .iter()
        .filter(|p| p.total_stock() > 0)
        .filter(|p| anchor.is_none_or(|a| a.category == p.category && a.id != p.id))
        .filter(|p| q.is_empty() || score(&q, p) > 0)
        .collect();
    picks.sort_by(|a, b| b.rating.total_cmp(&a.rating).then(a.id.cmp(&b.id)));
    let results: Vec<Value> = picks
        .into_iter()
        .take(limit)
        .map(|p| summary(shop, p, None))
        .collect();
    Reply::ok(json!({"results": results}))
}

/// `GET /catalog/size-guide?category=&brand=`
pub fn size_guide(req: &Req) -> Reply {
    let category = req
        .query("category")
        .unwrap_or("running-shoes")
        .to_lowercase();
    let brand = req.query("brand").unwrap_or_default();
    if category.contains("apparel") {
        return Reply::ok(json!({
            "category": category,
            "chest_inches": {"XS": "32-34", "S": "35-37", "M": "38-40", "L": "41-43", "XL": "44-46", "XXL": "47-49"},
            "advice": "Between sizes, take the larger one for layering.",
        }));
    }
    let fit = match brand.len() % 3 {
        0 => "true to size",
        1 => "runs half a size small",
        _ => "runs slightly narrow; consider wide",
    };
    let rows: Vec<Value> = (12..=30)
        .map(|half| {
            let us = f64::from(half) / 2.0;
            json!({"us": us, "uk": us - 0.5, "eu": (us + 33.0).round(), "cm": 22.0 + (us - 6.0) * 0.85})
        })
        .collect();
    Reply::ok(json!({
        "category": category,
        "brand": brand,
        "fit": fit,
        "widths": {"narrow": "B (men) / 2A (women)", "standard": "D (men) / B (women)", "wide": "2E (men) / D (women)", "extra-wide": "4E (men) / 2E (women)"},
        "sizes": rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words_fold_synonyms_and_plurals() {
        assert_eq!(
            words("Do these running sneakers come in Wide?"),
            ["running", "running", "wide"]
        );
        assert_eq!(words("hiking boots"), ["hiking", "boot"]);
        assert!(
            super::super::data::same_size("10.0", "10")
                && !super::super::data::same_size("10.5", "10")
        );
    }
}
