#!/usr/bin/env python3
"""Writes examples/commerce/catalog.json: the demo shop that `warden mock-commerce`
serves (products with sizes, widths and stock, stores, customers, orders, gift cards).
Deterministic: the same seed writes the same file. Run from the repository root."""

import json
import random
from datetime import date, timedelta

SEED = 20261201
TODAY = date(2026, 12, 1)
rng = random.Random(SEED)

BRANDS = ["Northpeak", "Stridewell", "Ardent", "Kestrel", "Tamarack", "Lumen", "Brisa", "Oakridge"]
COLORS = ["black", "white", "navy", "grey", "red", "teal", "orange", "olive", "blue", "coral", "sand"]
WIDTHS = ["narrow", "standard", "wide", "extra-wide"]
SHOE_SIZES = [f"{s / 2:g}" for s in range(12, 31)]  # 6 .. 15 in half sizes
APPAREL_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]

ROAD = [
    ("Stride Runner", "neutral daily trainer with a soft foam midsole", ["neutral", "cushioned", "daily"]),
    ("Tempo Flyer", "light tempo shoe with a snappy plate-free ride", ["lightweight", "tempo", "responsive"]),
    ("Cloudline", "max-cushion shoe for long easy miles", ["max-cushion", "long-run", "neutral"]),
    ("Guidepost", "stability trainer with a gentle medial post for overpronation", ["stability", "support", "daily"]),
    ("Velo Carbon", "carbon-plated racer for 10k to marathon", ["racing", "carbon-plate", "lightweight"]),
    ("Pacer Lite", "budget-friendly everyday running shoe", ["neutral", "value", "daily"]),
    ("Harbor Glide", "rocker-soled shoe that rolls through each stride", ["rocker", "cushioned", "recovery"]),
    ("Metro Dash", "firm, low-drop shoe for track and short runs", ["low-drop", "track", "firm"]),
]
TRAIL = [
    ("Ridge Runner", "grippy trail shoe with 5 mm lugs and a rock plate", ["trail", "rock-plate", "grip"]),
    ("Summit Trail GTX", "waterproof trail runner with a breathable membrane", ["trail", "waterproof", "grip"]),
    ("Scree Hopper", "light trail racer for dry singletrack", ["trail", "lightweight", "racing"]),
]
WALK = [
    ("Boulevard Walker", "supportive walking shoe with a roomy toe box", ["walking", "comfort", "roomy"]),
    ("Everyday Stroll", "slip-resistant walker for long days on your feet", ["walking", "slip-resistant", "work"]),
]
BOOTS = [
    ("Cascade Mid", "waterproof mid hiking boot with ankle support", ["hiking", "waterproof", "ankle-support"]),
    ("Talus Pro", "stiff backpacking boot for heavy loads", ["backpacking", "stiff", "waterproof"]),
    ("Meadow Low", "light hiking shoe for day hikes", ["hiking", "lightweight", "breathable"]),
]
APPAREL = [
    ("jackets", "Stormshell Jacket", "2.5-layer waterproof rain jacket with pit zips", 60, 190),
    ("jackets", "Featherdown Hoodie", "700-fill down hoodie that packs into its pocket", 120, 260),
    ("jackets", "Windbreaker Light", "wind-resistant running jacket with reflective trim", 45, 110),
    ("tops", "Airmesh Tee", "quick-dry running t-shirt", 18, 45),
    ("tops", "Merino Base Layer", "150 g merino long-sleeve base layer", 55, 110),
    ("tops", "Thermal Half-Zip", "brushed fleece half-zip for cold runs", 40, 85),
    ("bottoms", "Split Shorts 3in", "lightweight racing shorts with a liner", 25, 55),
    ("bottoms", "Trail Shorts 7in", "stretch shorts with zip pockets", 30, 65),
    ("bottoms", "Winter Tights", "fleece-lined running tights", 45, 95),
    ("bottoms", "Convertible Hiking Pants", "zip-off hiking pants with UPF 50", 55, 110),
    ("socks", "Cushion Crew Socks", "padded running socks, 3-pack", 14, 30),
    ("socks", "Merino Hiking Socks", "midweight merino hiking socks", 18, 32),
    ("accessories", "Beanie", "warm knit beanie", 15, 35),
    ("accessories", "Running Gloves", "touchscreen-friendly running gloves", 18, 40),
]
GEAR = [
    ("tents", "Alpine 2 Tent", "2-person 3-season backpacking tent, 1.6 kg", 180, 450),
    ("tents", "Basecamp 4 Tent", "4-person family camping tent", 220, 520),
    ("backpacks", "Trailhead 28 Daypack", "28 L daypack with hydration sleeve", 70, 150),
    ("backpacks", "Expedition 65 Pack", "65 L backpacking pack with adjustable torso", 180, 330),
    ("backpacks", "Run Vest 12", "12 L running vest with two soft flasks", 90, 160),
    ("sleeping", "Ember 20F Sleeping Bag", "down sleeping bag rated to 20 °F", 160, 380),
    ("sleeping", "Loft Sleeping Pad", "insulated inflatable sleeping pad, R-value 4.2", 90, 200),
    ("lighting", "Beam 400 Headlamp", "400-lumen rechargeable headlamp", 35, 75),
    ("trekking", "Carbon Trekking Poles", "folding carbon trekking poles, pair", 90, 180),
    ("hydration", "Insulated Bottle 750ml", "vacuum-insulated steel bottle", 22, 45),
    ("hydration", "Water Filter Squeeze", "hollow-fibre water filter", 30, 55),
    ("cooking", "Titan Stove", "compact canister stove", 40, 90),
]


def money(lo, hi):
    return round(rng.uniform(lo, hi)) - 0.01


def shoe(pid, model, desc, tags, category, gender, lo, hi):
    brand = rng.choice(BRANDS)
    version = rng.randint(2, 9)
    widths = ["standard"] + sorted(rng.sample(["narrow", "wide", "extra-wide"], rng.randint(0, 2)), key=WIDTHS.index)
    variants = []
    for size in SHOE_SIZES:
        for width in widths:
            stock = rng.choice([0, 0, 1, 2, 3, 4, 6, 8, 12, 20])
            v = {"size": size, "width": width, "stock": stock}
            if stock == 0:
                v["restock_date"] = (TODAY + timedelta(days=rng.randint(4, 40))).isoformat()
            variants.append(v)
    return {
        "id": pid,
        "name": f"{brand} {model} {version}",
        "brand": brand,
        "category": category,
        "gender": gender,
        "description": f"{brand}'s {desc}.",
        "price": money(lo, hi),
        "colors": rng.sample(COLORS, rng.randint(2, 4)),
        "tags": tags,
        "rating": round(rng.uniform(3.6, 4.9), 1),
        "review_count": rng.randint(8, 900),
        "widths": widths,
        "variants": variants,
    }


def simple(pid, category, name, desc, lo, hi, sizes):
    brand = rng.choice(BRANDS)
    variants = []
    for size in sizes:
        stock = rng.choice([0, 2, 5, 9, 15, 30, 60, 140])
        v = {"size": size, "width": None, "stock": stock}
        if stock == 0:
            v["restock_date"] = (TODAY + timedelta(days=rng.randint(4, 40))).isoformat()
        variants.append(v)
    return {
        "id": pid,
        "name": f"{brand} {name}",
        "brand": brand,
        "category": category,
        "gender": rng.choice(["men", "women", "unisex"]) if sizes != ["one-size"] else "unisex",
        "description": f"{brand}'s {desc}.",
        "price": money(lo, hi),
        "colors": rng.sample(COLORS, rng.randint(1, 3)),
        "tags": [category],
        "rating": round(rng.uniform(3.5, 4.9), 1),
        "review_count": rng.randint(3, 600),
        "widths": [],
        "variants": variants,
    }


def products():
    out = []
    n = 1000
    for gender in ["men", "women"]:
        for model, desc, tags in ROAD:
            for _ in range(4):
                n += 1
                out.append(shoe(f"P{n}", model, desc, tags, "running-shoes", gender, 70, 240))
        for model, desc, tags in TRAIL:
            for _ in range(4):
                n += 1
                out.append(shoe(f"P{n}", model, desc, tags, "trail-shoes", gender, 90, 190))
        for model, desc, tags in WALK:
            for _ in range(2):
                n += 1
                out.append(shoe(f"P{n}", model, desc, tags, "walking-shoes", gender, 60, 150))
        for model, desc, tags in BOOTS:
            for _ in range(2):
                n += 1
                out.append(shoe(f"P{n}", model, desc, tags, "hiking-boots", gender, 110, 280))
    for category, name, desc, lo, hi in APPAREL:
        for _ in range(4):
            n += 1
            out.append(simple(f"P{n}", f"apparel-{category}", name, desc, lo, hi, APPAREL_SIZES))
    for category, name, desc, lo, hi in GEAR:
        for _ in range(4):
            n += 1
            out.append(simple(f"P{n}", f"gear-{category}", name, desc, lo, hi, ["one-size"]))
    return out


STORES = [
    ("S01", "Portland Pearl", "1120 NW Couch St", "Portland", "OR", "97209", 45.524, -122.682),
    ("S02", "Seattle Capitol Hill", "415 Broadway E", "Seattle", "WA", "98102", 47.622, -122.321),
    ("S03", "Denver LoDo", "1601 Wazee St", "Denver", "CO", "80202", 39.752, -104.999),
    ("S04", "Austin South Congress", "1400 S Congress Ave", "Austin", "TX", "78704", 30.250, -97.749),
    ("S05", "Chicago River North", "540 N State St", "Chicago", "IL", "60654", 41.892, -87.628),
    ("S06", "Boston Back Bay", "360 Newbury St", "Boston", "MA", "02115", 42.348, -71.087),
    ("S07", "Brooklyn Williamsburg", "88 N 6th St", "Brooklyn", "NY", "11249", 40.719, -73.960),
    ("S08", "San Francisco Mission", "2200 Mission St", "San Francisco", "CA", "94110", 37.760, -122.419),
]

CUSTOMERS = [
    ("C1001", "Maria Gonzalez", "maria.gonzalez@example.com", "+1 503 555 0142", "2231 SE Clinton St, Portland, OR 97202"),
    ("C1002", "James Whitfield", "j.whitfield@example.net", "+1 206 555 0178", "918 E Pine St, Seattle, WA 98122"),
    ("C1003", "Aiko Tanaka", "aiko.tanaka@example.org", "+1 303 555 0119", "77 Larimer St, Denver, CO 80205"),
    ("C1004", "Samuel Okafor", "sam.okafor@example.com", "+1 512 555 0163", "1507 Holly St, Austin, TX 78702"),
    ("C1005", "Priya Raman", "priya.raman@example.com", "+1 312 555 0127", "3340 N Halsted St, Chicago, IL 60657"),
    ("C1006", "Lucas Moreau", "lucas.moreau@example.fr", "+1 617 555 0184", "12 Tremont St, Boston, MA 02108"),
    ("C1007", "Hannah Becker", "hannah.becker@example.de", "+1 718 555 0136", "245 Bedford Ave, Brooklyn, NY 11211"),
    ("C1008", "Diego Alvarez", "diego.alvarez@example.com", "+1 415 555 0191", "3051 24th St, San Francisco, CA 94110"),
    ("C1009", "Grace Liu", "grace.liu@example.com", "+1 503 555 0155", "610 NE Alberta St, Portland, OR 97211"),
    ("C1010", "Oliver Brennan", "oliver.brennan@example.ie", "+1 206 555 0104", "4520 Fremont Ave N, Seattle, WA 98103"),
    ("C1011", "Fatima Haddad", "fatima.haddad@example.com", "+1 303 555 0170", "1980 S Pearl St, Denver, CO 80210"),
    ("C1012", "Noah Fischer", "noah.fischer@example.com", "+1 312 555 0148", "1015 W Armitage Ave, Chicago, IL 60614"),
]


def main():
    catalog = products()
    by_id = {p["id"]: p for p in catalog}
    stores = [
        {"id": s[0], "name": f"Acme Outdoor {s[1]}", "address": s[2], "city": s[3], "state": s[4],
         "postal_code": s[5], "lat": s[6], "lon": s[7], "hours": "10:00-20:00"}
        for s in STORES
    ]
    store_stock = {}
    for p in catalog:
        for v in p["variants"]:
            key = f"{p['id']}|{v['size']}|{v['width'] or ''}"
            counts = {s["id"]: rng.choice([0, 0, 0, 0, 0, 0, 1, 2, 3]) for s in stores}
            if any(counts.values()):
                store_stock[key] = {k: c for k, c in counts.items() if c}
    customers = [
        {"id": c[0], "name": c[1], "email": c[2], "phone": c[3], "address": c[4],
         "loyalty_points": rng.randint(0, 9000), "tier": rng.choice(["member", "silver", "gold"])}
        for c in CUSTOMERS
    ]
    orders = []
    for i in range(40):
        customer = customers[i % len(customers)]
        items = []
        for _ in range(rng.randint(1, 3)):
            p = rng.choice(catalog)
            v = rng.choice(p["variants"])
            items.append({"product_id": p["id"], "name": p["name"], "size": v["size"], "width": v["width"],
                          "quantity": 1, "unit_price": p["price"]})
        placed = TODAY - timedelta(days=rng.randint(1, 60))
        status = rng.choice(["processing", "shipped", "delivered", "delivered"])
        total = round(sum(it["unit_price"] * it["quantity"] for it in items), 2)
        orders.append({
            "id": f"A{70000 + i * 37}",
            "customer_id": customer["id"],
            "placed_at": placed.isoformat(),
            "status": status,
            "items": items,
            "total": total,
            "shipping_address": customer["address"],
            "tracking_number": f"1Z{rng.randint(10**9, 10**10 - 1)}" if status != "processing" else None,
            "carrier": "UPS" if status != "processing" else None,
        })
    gift_cards = [
        {"code": f"GC-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}", "balance": float(rng.choice([10, 25, 50, 100, 0]))}
        for _ in range(6)
    ]
    coupons = [
        {"code": "WELCOME10", "percent_off": 10, "min_total": 0},
        {"code": "TRAIL20", "percent_off": 20, "min_total": 100, "categories": ["trail-shoes", "hiking-boots"]},
        {"code": "WINTER15", "percent_off": 15, "min_total": 50},
    ]
    doc = {
        "shop": "Acme Outdoor (demo data)",
        "generated": TODAY.isoformat(),
        "seed": SEED,
        "products": catalog,
        "store_stock": store_stock,
        "stores": stores,
        "customers": customers,
        "orders": orders,
        "gift_cards": gift_cards,
        "coupons": coupons,
    }
    assert len(by_id) == len(catalog) and len(catalog) >= 200
    with open("examples/commerce/catalog.json", "w") as f:
        # One product, store, customer or order per line: readable diffs.
        f.write("{\n")
        for i, (key, value) in enumerate(doc.items()):
            sep = "," if i + 1 < len(doc) else ""
            if isinstance(value, list):
                rows = ",\n".join("  " + json.dumps(v, separators=(",", ":")) for v in value)
                f.write(f"{json.dumps(key)}: [\n{rows}\n]{sep}\n")
            else:
                f.write(f"{json.dumps(key)}: {json.dumps(value, separators=(',', ':'))}{sep}\n")
        f.write("}\n")
    print(f"examples/commerce/catalog.json: {len(catalog)} products, {len(orders)} orders")
    terms = keep_terms(catalog)
    with open("examples/commerce/keep-terms.txt", "w") as f:
        f.write("# Commerce terms of the demo catalog (brands, product lines, product names, SKUs)\n")
        f.write("# that PII profiles keep (pii.profiles.NAME.keep_terms_files).\n")
        f.write("# Written by scripts/generate-catalog.py with examples/commerce/catalog.json.\n")
        f.write("".join(f"{t}\n" for t in terms))
    print(f"examples/commerce/keep-terms.txt: {len(terms)} terms")


def keep_terms(catalog):
    """Brands, product names with and without their brand, product lines (a name without
    its trailing version number) and SKUs."""
    terms = set()
    for p in catalog:
        brand, name = p["brand"], p["name"]
        terms.update([brand, name, p["id"]])
        rest = name[len(brand):].strip() if name.startswith(brand + " ") else name
        terms.add(rest)
        words = rest.split()
        if len(words) > 1 and words[-1].replace(".", "").isdigit():
            line = " ".join(words[:-1])
            terms.update([line, f"{brand} {line}"])
    return sorted(terms, key=lambda t: (t.lower(), t))


if __name__ == "__main__":
    main()
