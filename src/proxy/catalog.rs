//! The model listings, `GET /v1/models` and `GET /v1/models/{id}`: the configured models
//! the caller's policy lets it use (all of them without a policy).

use bytes::Bytes;

use super::Gateway;
use super::rescue::Failure;
use super::route::Route;
use crate::auth::Principal;
use crate::openai::models::{ModelList, ModelObject};

/// The listing `route` asks for, as JSON.
pub fn answer(gw: &Gateway, principal: &Principal, route: &Route) -> Result<Bytes, Failure> {
    match &route.model_id {
        None => Ok(list(gw, principal)),
        Some(id) => one(gw, principal, id),
    }
}

/// Whether the caller may see `model`.
fn may_list(gw: &Gateway, principal: &Principal, model: &str) -> bool {
    let Some(store) = &gw.policy else {
        return true;
    };
    let default_max = gw
        .upstreams
        .route(model)
        .map_or(0, |m| m.default_max_tokens);
    store.current().may_use_model(principal, model, default_max)
}

fn list(gw: &Gateway, principal: &Principal) -> Bytes {
    let data = gw
        .upstreams
        .model_names
        .iter()
        .filter(|name| may_list(gw, principal, name))
        .filter_map(|name| gw.upstreams.route(name))
        .map(|m| ModelObject::new(&m.name, &m.owned_by, gw.started_at))
        .collect();
    Bytes::from(serde_json::to_vec(&ModelList::new(data)).unwrap_or_default())
}

fn one(gw: &Gateway, principal: &Principal, id: &str) -> Result<Bytes, Failure> {
    let model = gw
        .upstreams
        .route(id)
        .filter(|m| may_list(gw, principal, &m.name))
        .ok_or_else(|| Failure::UnknownModel(id.to_string()))?;
    let obj = ModelObject::new(&model.name, &model.owned_by, gw.started_at);
    Ok(Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()))
}
