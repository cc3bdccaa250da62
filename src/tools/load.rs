//! Loading a tool registry file: parsing, then every check a tool must pass before a model
//! can be offered it — its name, its argument schema (a valid, self-contained object
//! schema), a backend request whose templates name only scalar arguments it declares,
//! risk-specific settings (approval only and always for `high`, idempotency for writes,
//! caps on numeric arguments). Errors carry the line and column to fix.

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::{Body as BodyDef, BodyMode, HttpMethod, RegistryFile, Risk, ToolDef};
use super::template::Template;
use super::{Body, Call, Registry, Tool};
use crate::config::locate;
use crate::config::yaml_error;
use crate::openai::request::valid_tool_name;

/// One problem in a registry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub position: Option<(usize, usize)>,
    pub message: String,
}

/// Longest backend wait a tool may set.
const MAX_TIMEOUT_MS: u64 = 600_000;

impl Registry {
    /// Adds the tools of the file `name` holding `text`; returns every problem found (and
    /// adds nothing then).
    pub fn add_file(&mut self, name: &str, text: &str) -> Result<(), Vec<FileError>> {
        let file: RegistryFile = serde_yaml_ng::from_str(text).map_err(|e| {
            let (mut position, message) = yaml_error(&e);
            if message.contains("CEL expression") {
                // serde reports the enclosing tool; point at its `when:` instead.
                position = position
                    .and_then(|(line, _)| locate::key_from(text, "when", line))
                    .or(position);
            }
            vec![FileError { position, message }]
        })?;
        let mut errors = Vec::new();
        if file.tools.is_empty() {
            errors.push(FileError {
                position: locate::key(text, "tools"),
                message: "`tools` must not be empty".into(),
            });
        }
        let mut added = Vec::new();
        for def in file.tools {
            let at = locate::value(text, "name", &def.name);
            let duplicate = self.tools.contains_key(&def.name)
                || added.iter().any(|t: &Tool| t.def.name == def.name);
            if duplicate {
                errors.push(FileError {
                    position: at,
                    message: format!("duplicate tool name `{}`", def.name),
                });
                continue;
            }
            match compile(def, name) {
                Ok(tool) => added.push(tool),
                Err(message) => errors.push(FileError {
                    position: at,
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for tool in added {
            self.tools.insert(tool.def.name.clone(), Arc::new(tool));
        }
        Ok(())
    }
}

/// Checks one tool and builds its validator and backend request.
fn compile(def: ToolDef, file: &str) -> Result<Tool, String> {
    let name = def.name.clone();
    let fail = |message: String| format!("tool `{name}`: {message}");
    if !valid_tool_name(&def.name) {
        return Err(format!(
            "tool name `{}` must match ^[a-zA-Z0-9_-]{{1,64}}$",
            def.name.chars().take(80).collect::<String>()
        ));
    }
    if def.description.trim().is_empty() {
        return Err(fail("`description` must not be empty".into()));
    }
    if def.examples.iter().any(|e| e.trim().is_empty()) {
        return Err(fail("`examples` must not hold empty entries".into()));
    }
    let properties = object_properties(&def.parameters).map_err(&fail)?;
    jsonschema::meta::validate(&def.parameters)
        .map_err(|e| fail(format!("`parameters` is not a valid JSON Schema: {e}")))?;
    let arguments = jsonschema::validator_for(&def.parameters)
        .map_err(|e| fail(format!("`parameters` cannot be compiled: {e}")))?;
    let scalar = |arg: &str| -> Result<(), String> {
        match properties.get(arg) {
            None => Err(format!(
                "a template names `{arg}`, which `parameters` does not declare"
            )),
            Some(schema) if is_scalar(schema) => Ok(()),
            Some(_) => Err(format!(
                "a template names `{arg}`, which is not a string, number, integer or boolean"
            )),
        }
    };
    let templates = |pairs: &std::collections::BTreeMap<String, String>,
                     scalar_only: bool|
     -> Result<Vec<(String, Template)>, String> {
        pairs
            .iter()
            .map(|(k, v)| {
                let t = Template::parse(v)?;
                for a in t.arguments() {
                    if scalar_only || t.whole_argument().is_none() {
                        scalar(a)?;
                    } else if !properties.contains_key(a) {
                        return Err(format!(
                            "a template names `{a}`, which `parameters` does not declare"
                        ));
                    }
                }
                Ok((k.clone(), t))
            })
            .collect()
    };
    if def.backend.trim().is_empty() {
        return Err(fail("`backend` must name a backend".into()));
    }
    let call = match (&def.http, &def.graphql) {
        (Some(http), None) => {
            if !http.path.starts_with('/') {
                return Err(fail("`http.path` must start with `/`".into()));
            }
            let path = Template::parse(&http.path).map_err(&fail)?;
            for a in path.arguments() {
                scalar(a).map_err(&fail)?;
            }
            let query = templates(&http.query, true).map_err(&fail)?;
            let reads = matches!(http.method, HttpMethod::Get | HttpMethod::Delete);
            let body = match &http.body {
                None if reads => Body::None,
                None => Body::Arguments,
                Some(BodyDef::Whole(BodyMode::None)) => Body::None,
                Some(_) if reads => {
                    return Err(fail(format!(
                        "a {} request carries no body",
                        http.method.as_str()
                    )));
                }
                Some(BodyDef::Whole(BodyMode::Arguments)) => Body::Arguments,
                Some(BodyDef::Fields(fields)) => {
                    Body::Fields(templates(fields, false).map_err(&fail)?)
                }
            };
            Call::Http {
                method: http.method,
                path,
                query,
                body,
            }
        }
        (None, Some(gql)) => {
            if !gql.path.starts_with('/') {
                return Err(fail("`graphql.path` must start with `/`".into()));
            }
            let operation = graphql_operation(&gql.query).map_err(&fail)?;
            match (def.risk, operation) {
                (Risk::Read, "mutation") => {
                    return Err(fail("a `read` tool may not run a GraphQL mutation".into()));
                }
                (Risk::Write | Risk::High, "query") => {
                    return Err(fail(
                        "a `write` or `high` tool runs a GraphQL mutation, not a query".into(),
                    ));
                }
                _ => {}
            }
            let variables = match &gql.variables {
                Some(v) => Some(templates(v, false).map_err(&fail)?),
                None => None,
            };
            Call::Graphql {
                path: gql.path.clone(),
                query: gql.query.clone(),
                variables,
            }
        }
        _ => return Err(fail("set exactly one of `http` and `graphql`".into())),
    };
    match (def.risk, &def.approval) {
        (Risk::High, None) => {
            return Err(fail(
                "a `high` tool needs `approval.when` (use `when: \"true\"` to approve every call)"
                    .into(),
            ));
        }
        (Risk::Read | Risk::Write, Some(_)) => {
            return Err(fail("only `high` tools take `approval`".into()));
        }
        (_, Some(a)) if a.expires_seconds == 0 => {
            return Err(fail("`approval.expires_seconds` must be at least 1".into()));
        }
        _ => {}
    }
    let idempotency = match (def.risk, &def.idempotency) {
        (Risk::Read, Some(_)) => {
            return Err(fail(
                "a `read` tool has no side effect to make idempotent".into(),
            ));
        }
        (Risk::Read, None) => None,
        (_, Some(i)) => Some(i.clone()),
        (_, None) => Some(Default::default()),
    };
    if let Some(i) = &idempotency {
        if http::HeaderName::from_bytes(i.header.as_bytes()).is_err() {
            return Err(fail(format!(
                "`idempotency.header` `{}` is not a header name",
                i.header
            )));
        }
        if i.ttl_seconds == 0 {
            return Err(fail("`idempotency.ttl_seconds` must be at least 1".into()));
        }
    }
    if def.timeout_ms == 0 || def.timeout_ms > MAX_TIMEOUT_MS {
        return Err(fail(format!(
            "`timeout_ms` must be between 1 and {MAX_TIMEOUT_MS}"
        )));
    }
    for cap in &def.caps {
        if def.risk == Risk::Read {
            return Err(fail("`caps` apply to `write` and `high` tools".into()));
        }
        let numeric = properties
            .get(&cap.sum)
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "number" || t == "integer");
        if !numeric {
            return Err(fail(format!(
                "cap `{}` sums `{}`, which must be a number or integer argument",
                cap.name, cap.sum
            )));
        }
        if !(cap.limit.is_finite() && cap.limit > 0.0) || cap.key.is_empty() {
            return Err(fail(format!(
                "cap `{}` needs a `limit` greater than 0 and a `key`",
                cap.name
            )));
        }
    }
    let digest = hex::encode(Sha256::digest(serde_json::to_vec(&def).unwrap_or_default()));
    Ok(Tool {
        def,
        arguments,
        call,
        idempotency,
        digest,
        file: file.to_string(),
    })
}

/// The `properties` of an object schema.
fn object_properties(schema: &Value) -> Result<serde_json::Map<String, Value>, String> {
    let obj = schema
        .as_object()
        .ok_or_else(|| "`parameters` must be a JSON Schema object".to_string())?;
    if obj.get("type").and_then(Value::as_str) != Some("object") {
        return Err("`parameters` must have `type: object`".into());
    }
    if let Some(r) = find_ref(schema)
        && !r.starts_with('#')
    {
        return Err(format!(
            "`parameters` refers to `{r}`: schemas must be self-contained"
        ));
    }
    Ok(obj
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

/// The first `$ref` anywhere in the schema.
fn find_ref(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) => o
            .get("$ref")
            .and_then(Value::as_str)
            .or_else(|| o.values().find_map(find_ref)),
        Value::Array(a) => a.iter().find_map(find_ref),
        _ => None,
    }
}

/// Whether a property schema holds one string, number, integer or boolean.
fn is_scalar(schema: &Value) -> bool {
    let scalar = |t: &str| matches!(t, "string" | "number" | "integer" | "boolean");
    match schema.get("type") {
        Some(Value::String(t)) => scalar(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .all(|t| scalar(t) || t == "null"),
        _ => false,
    }
}

/// `query` or `mutation`: the document's single operation (comments and whitespace
/// skipped; a bare `{ … }` is a query).
fn graphql_operation(document: &str) -> Result<&'static str, String> {
    let code: String = document
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let trimmed = code.trim_start();
    let operation = if trimmed.starts_with('{') || trimmed.starts_with("query") {
        "query"
    } else if trimmed.starts_with("mutation") {
        "mutation"
    } else {
        return Err("`graphql.query` must be one `query` or `mutation` operation".into());
    };
    let operations = ["query", "mutation", "subscription"]
        .iter()
        .map(|k| {
            code.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .filter(|w| w == k)
                .count()
        })
        .sum::<usize>();
    if operations > 1 {
        return Err("`graphql.query` must hold exactly one operation".into());
    }
    let balanced = code.matches('{').count() == code.matches('}').count();
    if !balanced {
        return Err("`graphql.query` has unbalanced braces".into());
    }
    Ok(operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "apiVersion: warden/v1\nkind: ToolRegistry\ntools:\n";

    fn registry(tools: &str) -> Result<Registry, Vec<FileError>> {
        let mut r = Registry::default();
        r.add_file("tools.yaml", &format!("{HEAD}{tools}"))?;
        Ok(r)
    }

    const GET_PRODUCT: &str = "  - name: get_product\n    description: One product by id.\n    \
        examples: [\"show me the Alpine 40L\"]\n    parameters:\n      type: object\n      \
        properties:\n        product_id: {type: string}\n        fields: {type: array, items: {type: string}}\n      \
        required: [product_id]\n    risk: read\n    backend: catalog\n    \
        http: {method: GET, path: \"/products/{product_id}\"}\n";

    #[test]
    fn a_valid_tool_compiles_with_defaults() {
        let r = registry(GET_PRODUCT).unwrap();
        let t = r.get("get_product").unwrap();
        assert!(t.idempotency.is_none());
        assert_eq!(t.def.timeout_ms, 5000);
        assert!(matches!(
            t.call,
            Call::Http {
                body: Body::None,
                ..
            }
        ));
        assert!(
            t.arguments
                .is_valid(&serde_json::json!({"product_id": "p1"}))
        );
        assert!(!t.arguments.is_valid(&serde_json::json!({"product_id": 5})));
        assert_eq!(t.digest.len(), 64);
    }

    fn error_of(tools: &str) -> FileError {
        match registry(tools) {
            Ok(_) => panic!("accepted: {tools}"),
            Err(mut e) => e.remove(0),
        }
    }

    #[test]
    fn each_mistake_is_an_error_at_its_tool() {
        let cases = [
            (
                GET_PRODUCT.replace("name: get_product", "name: \"get product\""),
                "must match",
            ),
            (
                GET_PRODUCT.replace("One product by id.", "\"\""),
                "`description`",
            ),
            (
                GET_PRODUCT.replace("type: object\n", "type: array\n"),
                "type: object",
            ),
            (
                GET_PRODUCT.replace(
                    "{type: string}\n        fields",
                    "{type: strnig}\n        fields",
                ),
                "not a valid JSON Schema",
            ),
            (
                GET_PRODUCT.replace("{product_id}", "{sku}"),
                "does not declare",
            ),
            (
                GET_PRODUCT.replace("{product_id}", "{fields}"),
                "not a string",
            ),
            (
                GET_PRODUCT.replace("path: \"/products", "path: \"products"),
                "must start with `/`",
            ),
            (
                GET_PRODUCT.replace("{method: GET,", "{method: GET, body: arguments,"),
                "carries no body",
            ),
            (
                GET_PRODUCT.replace("risk: read", "risk: high"),
                "needs `approval.when`",
            ),
            (
                GET_PRODUCT.replace("risk: read\n", "risk: read\n    idempotency: {}\n"),
                "no side effect",
            ),
            (
                GET_PRODUCT.replace(
                    "risk: read\n",
                    "risk: read\n    approval: {when: \"args.x > 1\"}\n",
                ),
                "only `high` tools",
            ),
            (
                GET_PRODUCT.replace("risk: read\n", "risk: read\n    timeout_ms: 0\n"),
                "`timeout_ms`",
            ),
            (
                GET_PRODUCT.replace(
                    "        fields",
                    "        other: {$ref: \"https://example.com/s.json\"}\n        fields",
                ),
                "self-contained",
            ),
            (format!("{GET_PRODUCT}{GET_PRODUCT}"), "duplicate tool name"),
        ];
        for (tools, expected) in cases {
            let e = error_of(&tools);
            assert!(e.message.contains(expected), "{expected}: {}", e.message);
            assert!(e.position.is_some(), "{expected}: no position");
        }
    }

    #[test]
    fn cel_errors_point_at_the_condition() {
        let refund = "  - name: issue_refund\n    description: Refund an order.\n    parameters:\n      \
            type: object\n      properties:\n        order_id: {type: string}\n        amount: {type: number}\n    \
            risk: high\n    backend: orders\n    http: {method: POST, path: \"/orders/{order_id}/refunds\"}\n    \
            approval:\n      when: \"request.amount > 100\"\n";
        let e = error_of(refund);
        assert!(
            e.message.contains("unknown variable `request`"),
            "{}",
            e.message
        );
        assert_eq!(e.position.map(|p| p.0), Some(15), "{e:?}");
        let ok = registry(&refund.replace("request.amount", "args.amount")).unwrap();
        let t = ok.get("issue_refund").unwrap();
        assert_eq!(t.idempotency.as_ref().unwrap().header, "Idempotency-Key");
        assert!(matches!(
            t.call,
            Call::Http {
                body: Body::Arguments,
                ..
            }
        ));
        let capped = refund.replace("request.amount", "args.amount")
            + "    caps:\n      - {name: daily-refunds, sum: order_id, limit: 300, per: day}\n";
        assert!(error_of(&capped).message.contains("must be a number"));
    }

    #[test]
    fn graphql_operations_match_the_risk() {
        let stock = "  - name: check_inventory\n    description: Stock of a product.\n    parameters:\n      \
            type: object\n      properties:\n        sku: {type: string}\n    risk: read\n    backend: erp\n    \
            graphql:\n      query: \"query($sku: String!) { stock(sku: $sku) { available } }\"\n";
        assert!(registry(stock).is_ok());
        let e = error_of(&stock.replace("query($sku", "mutation($sku"));
        assert!(
            e.message.contains("may not run a GraphQL mutation"),
            "{}",
            e.message
        );
        let e = error_of(&stock.replace(
            "query($sku: String!) { stock",
            "query A { a } query B { stock",
        ));
        assert!(e.message.contains("exactly one operation"), "{}", e.message);
        let e = error_of(&format!("{stock}    http: {{method: GET, path: /x}}\n"));
        assert!(e.message.contains("exactly one of"), "{}", e.message);
    }
}
