//! The `model` and `list` objects of `GET /v1/models`.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ModelObject<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ModelList<'a> {
    pub object: &'static str,
    pub data: Vec<ModelObject<'a>>,
}

impl<'a> ModelObject<'a> {
    pub fn new(id: &'a str, owned_by: &'a str, created: u64) -> Self {
        ModelObject {
            id,
            object: "model",
            created,
            owned_by,
        }
    }
}

impl<'a> ModelList<'a> {
    pub fn new(data: Vec<ModelObject<'a>>) -> Self {
        ModelList {
            object: "list",
            data,
        }
    }
}
