//! Stage 1, route: which endpoint a method and path name — one of OpenAI's, a stored
//! response (`/v1/responses/{id}`, `…/input_items`), or `POST /v1/tools/{name}/invoke`.
//! Unknown paths get 404 and known paths with the wrong method 405, both in OpenAI's
//! error shape.

use http::Method;

use crate::openai::{ApiError, Endpoint, ErrorKind};

/// A resolved route: the endpoint and, for `GET /v1/models/{id}`, the model id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    pub model_id: Option<String>,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Api(Route),
    /// `POST /v1/tools/{name}/invoke`, with the tool's name as the path gives it.
    ToolInvoke(String),
    /// A response the provider stores, by id.
    Stored(StoredRoute),
}

/// `GET`/`DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoute {
    pub id: String,
    pub action: StoredAction,
    /// The query string (`limit`, `order`, `after`, `include[]`), passed on.
    pub query: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredAction {
    Get,
    Delete,
    InputItems,
}

impl StoredAction {
    pub fn method(self) -> Method {
        match self {
            StoredAction::Delete => Method::DELETE,
            StoredAction::Get | StoredAction::InputItems => Method::GET,
        }
    }
}

impl Resolved {
    /// The route's label in metrics, logs and records.
    pub fn label(&self) -> &'static str {
        match self {
            Resolved::Api(r) => r.endpoint.label(),
            Resolved::ToolInvoke(_) => "tools_invoke",
            Resolved::Stored(s) => match s.action {
                StoredAction::Get => "responses_get",
                StoredAction::Delete => "responses_delete",
                StoredAction::InputItems => "responses_input_items",
            },
        }
    }
}

/// Resolves a request's method and path (with its query string, which only stored
/// responses read).
pub fn resolve(method: &Method, uri: &http::Uri) -> Result<Resolved, ApiError> {
    let path = uri.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    if let Some(rest) = path.strip_prefix("/v1/responses/") {
        return stored(method, rest, uri.query()).map(Resolved::Stored);
    }
    if let Some(tool) = path
        .strip_prefix("/v1/tools/")
        .and_then(|rest| rest.strip_suffix("/invoke"))
        .filter(|t| !t.is_empty() && !t.contains('/'))
    {
        if *method != Method::POST {
            return Err(method_not_allowed(&Method::POST));
        }
        return Ok(Resolved::ToolInvoke(tool.to_string()));
    }
    resolve_api(method, path).map(Resolved::Api)
}

fn method_not_allowed(allowed: &Method) -> ApiError {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!("Method not allowed: this endpoint accepts {allowed} only."),
    )
    .with_header("allow", allowed.as_str())
}

fn resolve_api(method: &Method, path: &str) -> Result<Route, ApiError> {
    let (endpoint, allowed, model_id) = match path {
        "/v1/chat/completions" => (Endpoint::ChatCompletions, Method::POST, None),
        "/v1/completions" => (Endpoint::Completions, Method::POST, None),
        "/v1/embeddings" => (Endpoint::Embeddings, Method::POST, None),
        "/v1/responses" => (Endpoint::Responses, Method::POST, None),
        "/v1/models" => (Endpoint::ListModels, Method::GET, None),
        _ => match path.strip_prefix("/v1/models/") {
            Some(id) if !id.is_empty() => {
                (Endpoint::GetModel, Method::GET, Some(percent_decode(id)?))
            }
            _ => {
                return Err(ApiError::new(
                    ErrorKind::NotFound,
                    "Unknown endpoint. Warden serves POST /v1/chat/completions, \
                     POST /v1/completions, POST /v1/embeddings, POST /v1/responses, \
                     GET /v1/models and POST /v1/tools/{name}/invoke.",
                )
                .with_code("unknown_url"));
            }
        },
    };
    if *method != allowed {
        return Err(method_not_allowed(&allowed));
    }
    Ok(Route { endpoint, model_id })
}

/// A stored response's route. Ids are provider identifiers (`resp_…`): letters, digits,
/// `_` and `-`; anything else names no response. A query is passed on only in the
/// characters its parameters use.
fn stored(method: &Method, rest: &str, query: Option<&str>) -> Result<StoredRoute, ApiError> {
    let (id, action) = match rest.strip_suffix("/input_items") {
        Some(id) => (id, StoredAction::InputItems),
        None if *method == Method::DELETE => (rest, StoredAction::Delete),
        None => (rest, StoredAction::Get),
    };
    let valid_id = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_id {
        return Err(
            ApiError::new(ErrorKind::NotFound, "No response with that id was found.")
                .with_code("response_not_found"),
        );
    }
    let allowed = match action {
        StoredAction::Get | StoredAction::Delete => [Method::GET, Method::DELETE].contains(method),
        StoredAction::InputItems => *method == Method::GET,
    };
    if !allowed {
        return Err(method_not_allowed(&Method::GET));
    }
    let query = query.filter(|q| !q.is_empty());
    if let Some(q) = query {
        let safe = q.len() <= 1024
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.=&%[]".contains(&b));
        if !safe {
            return Err(ApiError::invalid(
                "The query string holds characters no parameter of this endpoint uses.",
            ));
        }
        if q.split('&').any(|p| p == "stream=true") {
            return Err(ApiError::invalid(
                "Streaming a stored response again ('stream=true') is not supported through Warden.",
            )
            .with_param("stream"));
        }
    }
    Ok(StoredRoute {
        id: id.to_string(),
        action,
        query: query.map(str::to_string),
    })
}

/// Decodes `%XX` escapes of a path segment (model ids such as `org%2Fmodel`).
fn percent_decode(s: &str) -> Result<String, ApiError> {
    let mut bytes = s.bytes();
    let mut out = Vec::with_capacity(s.len());
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = [bytes.next(), bytes.next()];
        let value = match hex {
            [Some(h), Some(l)] => std::str::from_utf8(&[h, l])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
            _ => None,
        };
        let Some(v) = value else {
            return Err(ApiError::invalid(
                "Malformed percent-encoding in the model id.",
            ));
        };
        out.push(v);
    }
    String::from_utf8(out).map_err(|_| ApiError::invalid("The model id is not valid UTF-8."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(method: &Method, path: &str) -> Result<Resolved, ApiError> {
        super::resolve(method, &path.parse().unwrap())
    }

    fn api(method: &Method, path: &str) -> Route {
        match resolve(method, path).unwrap() {
            Resolved::Api(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resolves_known_endpoints() {
        assert_eq!(
            api(&Method::POST, "/v1/chat/completions").endpoint,
            Endpoint::ChatCompletions
        );
        assert_eq!(
            api(&Method::GET, "/v1/models/").endpoint,
            Endpoint::ListModels
        );
        let r = api(&Method::GET, "/v1/models/org%2Fllama-3");
        assert_eq!(r.model_id.as_deref(), Some("org/llama-3"));
        assert_eq!(
            api(&Method::GET, "/v1/models/a/b").model_id.as_deref(),
            Some("a/b")
        );
        assert_eq!(
            resolve(&Method::POST, "/v1/tools/get_price/invoke").unwrap(),
            Resolved::ToolInvoke("get_price".into())
        );
        let e = resolve(&Method::GET, "/v1/tools/get_price/invoke").unwrap_err();
        assert_eq!(e.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        for p in [
            "/v1/tools//invoke",
            "/v1/tools/a/b/invoke",
            "/v1/tools/get_price",
        ] {
            assert!(resolve(&Method::POST, p).is_err(), "{p}");
        }
    }

    #[test]
    fn stored_responses_by_id() {
        let stored = |m: &Method, p: &str| match resolve(m, p) {
            Ok(Resolved::Stored(s)) => Ok(s),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.status()),
        };
        let get = stored(&Method::GET, "/v1/responses/resp_67ab-c").unwrap();
        assert_eq!(
            (get.id.as_str(), get.action),
            ("resp_67ab-c", StoredAction::Get)
        );
        let del = stored(&Method::DELETE, "/v1/responses/resp_1").unwrap();
        assert_eq!(del.action, StoredAction::Delete);
        let items = stored(
            &Method::GET,
            "/v1/responses/resp_1/input_items?limit=5&order=asc",
        )
        .unwrap();
        assert_eq!(items.action, StoredAction::InputItems);
        assert_eq!(items.query.as_deref(), Some("limit=5&order=asc"));
        for bad in [
            "/v1/responses/resp_1/../../admin",
            "/v1/responses/a%2Fb",
            "/v1/responses/resp_1/other",
        ] {
            assert_eq!(
                stored(&Method::GET, bad).unwrap_err(),
                http::StatusCode::NOT_FOUND,
                "{bad}"
            );
        }
        assert_eq!(
            stored(&Method::POST, "/v1/responses/resp_1").unwrap_err(),
            http::StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            stored(&Method::DELETE, "/v1/responses/resp_1/input_items").unwrap_err(),
            http::StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            stored(&Method::GET, "/v1/responses/resp_1?stream=true").unwrap_err(),
            http::StatusCode::BAD_REQUEST
        );
        assert_eq!(
            resolve(&Method::POST, "/v1/responses").unwrap(),
            Resolved::Api(Route {
                endpoint: Endpoint::Responses,
                model_id: None
            })
        );
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let e = resolve(&Method::GET, "/v1/chat/completions").unwrap_err();
        assert_eq!(e.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(e.headers, vec![("allow", "POST".to_string())]);
    }

    #[test]
    fn unknown_paths_are_404() {
        for p in ["/v1/files", "/v2/chat/completions", "/", "/v1/models/%zz"] {
            assert!(resolve(&Method::POST, p).is_err(), "{p}");
        }
        assert_eq!(
            resolve(&Method::POST, "/v1/assistants")
                .unwrap_err()
                .status(),
            http::StatusCode::NOT_FOUND
        );
    }
}
