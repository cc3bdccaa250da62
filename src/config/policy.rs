//! Where the policy files live (`policy:`); the policies themselves are `policy`'s.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use super::default_true;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Directory of policy files (`kind: Policy`); tests live in `DIR/tests`.
    pub dir: PathBuf,
    /// Reload on file changes (SIGHUP always reloads).
    #[serde(default = "default_true")]
    pub watch: bool,
}

impl PolicyConfig {
    /// A relative `dir` is relative to the config file's directory `base`.
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if self.dir.is_relative() {
            self.dir = base.join(&self.dir);
        }
    }
}
