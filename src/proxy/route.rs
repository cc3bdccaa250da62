//! Stage 1, route: which endpoint a method and path name — one of OpenAI's, or
//! `POST /v1/tools/{name}/invoke`. Unknown paths get 404 and known paths with the wrong
//! method 405, both in OpenAI's error shape.

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
}

impl Resolved {
    /// The route's label in metrics, logs and records.
    pub fn label(&self) -> &'static str {
        match self {
            Resolved::Api(r) => r.endpoint.label(),
            Resolved::ToolInvoke(_) => "tools_invoke",
        }
    }
}

pub fn resolve(method: &Method, path: &str) -> Result<Resolved, ApiError> {
    let path = path.strip_suffix('/').unwrap_or(path);
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
