//! The header every file security teams edit carries (`apiVersion: warden/v1`, optional
//! `metadata`), shared by policy, policy test and tool registry files.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum ApiVersion {
    #[serde(rename = "warden/v1")]
    V1,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Who to ask about this file.
    #[serde(default)]
    pub owner: Option<String>,
}
