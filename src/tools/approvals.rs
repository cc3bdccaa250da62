//! The approval queue of `high`-risk calls. A call whose approval condition holds is not
//! run: a pending approval is stored, bound to everything that made the decision — the
//! principal, the tool, the SHA-256 of the canonical arguments, the digest of the tool's
//! definition and of the deciding rule — with an expiry. A person with an approver role
//! (never the requester) approves or rejects it; the approved call then runs exactly once,
//! when the same principal calls the same tool with the same arguments again, on any
//! replica. A changed argument, principal, tool definition or rule is another binding and
//! needs its own approval.
//!
//! Approvals live in the shared state store, sealed (AES-GCM, bound to their key), under
//! the tenant's hash tag: `{t:acme}:a:<id>` (the approval), `{t:acme}:b:<binding>` (the
//! binding → id) and `{t:acme}:index` (the ids, for listing). `{*}:pending` maps every
//! tenant's pending ids to their expiry, so every replica reports the same number of
//! approvals waiting (`warden_approvals_pending`). Every transition is a compare-and-set,
//! so two replicas can never both run one approval.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::{Key, Sealer, StateError, StateStore, parts_digest, tag};

const NAMESPACE: &str = "approvals";
/// How long a decided or expired approval stays listed.
const KEPT_AFTER_EXPIRY: Duration = Duration::from_secs(86_400);
/// Most approvals listed per tenant.
const MAX_INDEX: usize = 1_000;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    /// Claimed by the replica running the call.
    Executing,
    Executed,
    Rejected,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Executing => "executing",
            Status::Executed => "executed",
            Status::Rejected => "rejected",
        }
    }
}

/// One approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub tool: String,
    pub tenant: Option<String>,
    /// The requester as the audit log names them (API key id or pseudonym).
    pub requester: String,
    /// The requester's pseudonymous id: they may never decide.
    pub requester_id: String,
    pub binding: String,
    pub rule: String,
    /// The arguments as the PII profile leaves them, for the approver.
    pub preview: serde_json::Value,
    pub status: Status,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<i64>,
    /// When a replica claimed the approved call to run it (`executing`).
    #[serde(default)]
    pub claimed_at: Option<i64>,
}

impl Approval {
    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    /// What `GET /admin/v1/approvals` shows.
    pub fn view(&self, now: i64) -> serde_json::Value {
        let status = if self.status == Status::Pending && self.expired(now) {
            "expired"
        } else {
            self.status.label()
        };
        serde_json::json!({
            "id": self.id,
            "tool": self.tool,
            "tenant": self.tenant,
            "requester": self.requester,
            "rule": self.rule,
            "arguments": self.preview,
            "status": status,
            "created": rfc3339(self.created_at),
            "expires": rfc3339(self.expires_at),
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.map(rfc3339),
        })
    }
}

pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// What a call's binding is made of.
pub struct Binding<'a> {
    pub tenant: Option<&'a str>,
    pub requester_id: &'a str,
    pub tool: &'a str,
    pub arguments: &'a serde_json::Map<String, serde_json::Value>,
    pub tool_digest: &'a str,
    pub rule: &'a str,
    pub rule_digest: &'a str,
}

impl Binding<'_> {
    /// SHA-256 over the parts, each length-prefixed; the arguments canonical (RFC 8785).
    pub fn digest(&self) -> String {
        let args = serde_jcs::to_vec(&serde_json::Value::Object(self.arguments.clone()))
            .unwrap_or_default();
        let args = Sha256::digest(&args);
        parts_digest(&[
            self.tenant.unwrap_or("").as_bytes(),
            self.requester_id.as_bytes(),
            self.tool.as_bytes(),
            &args,
            self.tool_digest.as_bytes(),
            self.rule.as_bytes(),
            self.rule_digest.as_bytes(),
        ])
    }
}

/// Why a decision was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideError {
    NotFound,
    /// Already decided (or run, or expired): a second decision changes nothing.
    Decided(&'static str),
    /// The approver is the requester.
    OwnCall,
    Store,
}

/// The approval queue in the shared state.
pub struct Approvals {
    state: StateStore,
    sealer: Arc<Sealer>,
}

fn record_name(tenant: Option<&str>, id: &str) -> String {
    format!("{}:a:{id}", tag(tenant))
}

fn binding_name(tenant: Option<&str>, binding: &str) -> String {
    format!("{}:b:{binding}", tag(tenant))
}

fn index_name(tenant: Option<&str>) -> String {
    format!("{}:index", tag(tenant))
}

/// Every tenant's pending approvals: id → expiry (unix seconds).
fn pending_name() -> String {
    format!("{}:pending", tag(None))
}

/// How long the index keys live without a write.
const INDEX_TTL: Duration = Duration::from_secs(30 * 86_400);

impl Approvals {
    pub fn new(state: StateStore, sealer: Arc<Sealer>) -> Approvals {
        Approvals { state, sealer }
    }

    /// Whether approvals hold across replicas: in process, or with a shared key.
    pub fn usable(&self) -> bool {
        matches!(self.state, StateStore::Memory(_)) || self.sealer.shared
    }

    async fn load(
        &self,
        tenant: Option<&str>,
        id: &str,
    ) -> Result<Option<(Approval, Vec<u8>)>, StateError> {
        let name = record_name(tenant, id);
        let Some(raw) = self.state.get(Key::new(NAMESPACE, &name)).await? else {
            return Ok(None);
        };
        let approval = self
            .sealer
            .open(&name, &raw)
            .and_then(|plain| serde_json::from_slice::<Approval>(&plain).ok());
        Ok(approval.map(|a| (a, raw)))
    }

    fn ttl(approval: &Approval) -> Duration {
        let left = (approval.expires_at - now()).max(1) as u64;
        Duration::from_secs(left) + KEPT_AFTER_EXPIRY
    }

    /// Replaces the approval if it is still as `raw` was read; false when another
    /// replica changed it first.
    async fn swap(&self, approval: &Approval, raw: &[u8]) -> Result<bool, StateError> {
        let name = record_name(approval.tenant.as_deref(), &approval.id);
        let plain = serde_json::to_vec(approval).unwrap_or_default();
        let sealed = self
            .sealer
            .seal(&name, &plain)
            .ok_or_else(|| StateError("sealing failed".into()))?;
        self.state
            .compare_and_set(
                Key::new(NAMESPACE, &name),
                Some(raw),
                &sealed,
                Self::ttl(approval),
            )
            .await
    }

    /// The approval a call's binding names, if any.
    pub async fn find(
        &self,
        tenant: Option<&str>,
        binding: &str,
    ) -> Result<Option<Approval>, StateError> {
        let name = binding_name(tenant, binding);
        let Some(id) = self.state.get(Key::new(NAMESPACE, &name)).await? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        Ok(self.load(tenant, &id).await?.map(|(a, _)| a))
    }

    /// Stores a new pending approval and points its binding at it.
    pub async fn create(&self, approval: &Approval) -> Result<(), StateError> {
        let tenant = approval.tenant.as_deref();
        let name = record_name(tenant, &approval.id);
        let plain = serde_json::to_vec(approval).unwrap_or_default();
        let sealed = self
            .sealer
            .seal(&name, &plain)
            .ok_or_else(|| StateError("sealing failed".into()))?;
        let ttl = Self::ttl(approval);
        self.state
            .put(Key::new(NAMESPACE, &name), &sealed, ttl)
            .await?;
        let binding = binding_name(tenant, &approval.binding);
        self.state
            .put(Key::new(NAMESPACE, &binding), approval.id.as_bytes(), ttl)
            .await?;
        self.update_index(&index_name(tenant), |ids: &mut Vec<String>| {
            ids.push(approval.id.clone());
            let excess = ids.len().saturating_sub(MAX_INDEX);
            ids.drain(..excess);
        })
        .await?;
        self.update_pending(|pending| {
            pending.insert(approval.id.clone(), approval.expires_at);
        })
        .await
    }

    /// Changes the JSON index under `name` with `change`, by compare-and-set.
    async fn update_index<T>(&self, name: &str, change: impl Fn(&mut T)) -> Result<(), StateError>
    where
        T: Default + Serialize + for<'de> Deserialize<'de>,
    {
        for _ in 0..16 {
            let raw = self.state.get(Key::new(NAMESPACE, name)).await?;
            let mut index: T = raw
                .as_deref()
                .and_then(|r| serde_json::from_slice(r).ok())
                .unwrap_or_default();
            change(&mut index);
            let value = serde_json::to_vec(&index).unwrap_or_default();
            if self
                .state
                .compare_and_set(Key::new(NAMESPACE, name), raw.as_deref(), &value, INDEX_TTL)
                .await?
            {
                return Ok(());
            }
        }
        Err(StateError("the approval index is too busy".into()))
    }

    /// Changes the pending index, dropping entries that expired.
    async fn update_pending(
        &self,
        change: impl Fn(&mut BTreeMap<String, i64>),
    ) -> Result<(), StateError> {
        let now = now();
        self.update_index(&pending_name(), |pending: &mut BTreeMap<String, i64>| {
            pending.retain(|_, expires_at| *expires_at > now);
            change(pending);
        })
        .await
    }

    /// How many approvals, of every tenant, wait for a decision and have not expired.
    pub async fn pending(&self) -> Result<usize, StateError> {
        let raw = self.state.get(Key::new(NAMESPACE, &pending_name())).await?;
        let pending: BTreeMap<String, i64> = raw
            .as_deref()
            .and_then(|r| serde_json::from_slice(r).ok())
            .unwrap_or_default();
        let now = now();
        Ok(pending.values().filter(|&&at| at > now).count())
    }

    /// A tenant's approvals, newest first (expired ones that aged out are gone).
    pub async fn list(&self, tenant: Option<&str>) -> Result<Vec<Approval>, StateError> {
        let raw = self
            .state
            .get(Key::new(NAMESPACE, &index_name(tenant)))
            .await?;
        let ids: Vec<String> = raw
            .as_deref()
            .and_then(|r| serde_json::from_slice(r).ok())
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in ids.iter().rev() {
            if let Some((a, _)) = self.load(tenant, id).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Approves or rejects a pending approval of `tenant` for `approver` (their
    /// pseudonymous id, and the name the record shows).
    pub async fn decide(
        &self,
        tenant: Option<&str>,
        id: &str,
        approve: bool,
        approver_id: &str,
        approver: &str,
    ) -> Result<Approval, DecideError> {
        let Some((mut approval, raw)) = self
            .load(tenant, id)
            .await
            .map_err(|_| DecideError::Store)?
        else {
            return Err(DecideError::NotFound);
        };
        if approval.requester_id == approver_id {
            return Err(DecideError::OwnCall);
        }
        let now = now();
        if approval.status != Status::Pending {
            return Err(DecideError::Decided(approval.status.label()));
        }
        if approval.expired(now) {
            return Err(DecideError::Decided("expired"));
        }
        approval.status = if approve {
            Status::Approved
        } else {
            Status::Rejected
        };
        approval.decided_by = Some(approver.to_string());
        approval.decided_at = Some(now);
        match self.swap(&approval, &raw).await {
            Ok(true) => {
                if let Err(e) = self
                    .update_pending(|p| {
                        p.remove(&approval.id);
                    })
                    .await
                {
                    // The count overstates until the approval's expiry; the decision stands.
                    tracing::warn!(error = %e.0, "approvals: the pending index was not updated");
                }
                Ok(approval)
            }
            Ok(false) => Err(DecideError::Decided("changed")),
            Err(_) => Err(DecideError::Store),
        }
    }

    /// Claims an approved approval to run its call: true for exactly one caller. A claim
    /// older than `stale_after` (its replica died mid-call) can be taken over; the call's
    /// idempotency key keeps the backend from running it twice.
    pub async fn claim(
        &self,
        approval: &Approval,
        stale_after: Duration,
    ) -> Result<bool, StateError> {
        let Some((mut current, raw)) = self.load(approval.tenant.as_deref(), &approval.id).await?
        else {
            return Ok(false);
        };
        let now = now();
        let stale = current
            .claimed_at
            .is_some_and(|at| now - at >= i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX));
        let claimable = match current.status {
            Status::Approved => true,
            Status::Executing => stale,
            _ => false,
        };
        if !claimable || current.expired(now) {
            return Ok(false);
        }
        current.status = Status::Executing;
        current.claimed_at = Some(now);
        self.swap(&current, &raw).await
    }

    /// Marks a claimed approval run (`done`), or approved again when the call did not
    /// run (the backend failed), so it can be retried.
    pub async fn finish(&self, approval: &Approval, done: bool) -> Result<bool, StateError> {
        let to = if done {
            Status::Executed
        } else {
            Status::Approved
        };
        self.transition(approval, Status::Executing, to).await
    }

    async fn transition(
        &self,
        approval: &Approval,
        from: Status,
        to: Status,
    ) -> Result<bool, StateError> {
        let Some((mut current, raw)) = self.load(approval.tenant.as_deref(), &approval.id).await?
        else {
            return Ok(false);
        };
        if current.status != from {
            return Ok(false);
        }
        current.status = to;
        self.swap(&current, &raw).await
    }
}

/// Announces new pending approvals (`tools.approvals.webhook_url`), off the request path.
pub struct Webhook {
    client: crate::http_client::HttpClient,
    url: String,
}

impl Webhook {
    pub fn new(url: &str) -> anyhow::Result<Webhook> {
        Ok(Webhook {
            client: crate::http_client::build(Duration::from_secs(2), None)?,
            url: url.to_string(),
        })
    }

    /// POSTs the announcement; a failure is logged, never felt by the request.
    pub fn announce(&self, approval: &Approval) {
        let body = serde_json::json!({
            "event": "approval.pending",
            "approval_id": approval.id,
            "tool": approval.tool,
            "tenant": approval.tenant,
            "expires_at": rfc3339(approval.expires_at),
        });
        let request = http::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )));
        let Ok(request) = request else {
            return;
        };
        let client = self.client.clone();
        tokio::spawn(async move {
            let sent = tokio::time::timeout(Duration::from_secs(5), client.request(request)).await;
            match sent {
                Ok(Ok(resp)) if resp.status().is_success() => {}
                _ => tracing::warn!("approvals: the webhook did not accept an announcement"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(id: &str, requester: &str) -> Approval {
        Approval {
            id: id.into(),
            tool: "issue_refund".into(),
            tenant: Some("acme".into()),
            requester: requester.into(),
            requester_id: requester.into(),
            binding: format!("b-{id}"),
            rule: "support".into(),
            preview: serde_json::json!({"amount": 120}),
            status: Status::Pending,
            created_at: now(),
            expires_at: now() + 60,
            decided_by: None,
            decided_at: None,
            claimed_at: None,
        }
    }

    #[tokio::test]
    async fn pending_approvals_are_counted_across_tenants_until_decided_or_expired() {
        let sealer = Arc::new(Sealer::from_env("WARDEN_TEST_UNSET_KEY").unwrap());
        let q = Approvals::new(StateStore::Memory(Arc::default()), sealer);
        assert_eq!(q.pending().await.unwrap(), 0);
        q.create(&approval("p1", "alice")).await.unwrap();
        let mut other = approval("p2", "dave");
        other.tenant = Some("globex".into());
        q.create(&other).await.unwrap();
        let mut stale = approval("p3", "erin");
        stale.expires_at = now() - 1;
        q.create(&stale).await.unwrap();
        assert_eq!(
            q.pending().await.unwrap(),
            2,
            "two tenants', the expired one not"
        );
        q.decide(Some("acme"), "p1", false, "bob", "bob")
            .await
            .unwrap();
        assert_eq!(q.pending().await.unwrap(), 1);
        q.decide(Some("globex"), "p2", true, "bob", "bob")
            .await
            .unwrap();
        assert_eq!(q.pending().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn an_approval_is_decided_once_and_claimed_once() {
        let sealer = Arc::new(Sealer::from_env("WARDEN_TEST_UNSET_KEY").unwrap());
        let q = Approvals::new(StateStore::Memory(Arc::default()), sealer);
        let a = approval("a1", "alice");
        q.create(&a).await.unwrap();
        let found = q.find(Some("acme"), "b-a1").await.unwrap().unwrap();
        assert_eq!(found.status, Status::Pending);
        assert_eq!(
            q.decide(Some("acme"), "a1", true, "alice", "alice")
                .await
                .unwrap_err(),
            DecideError::OwnCall
        );
        assert_eq!(
            q.decide(Some("other"), "a1", true, "bob", "bob")
                .await
                .unwrap_err(),
            DecideError::NotFound
        );
        let approved = q
            .decide(Some("acme"), "a1", true, "bob", "bob")
            .await
            .unwrap();
        assert_eq!(approved.status, Status::Approved);
        assert_eq!(
            q.decide(Some("acme"), "a1", false, "carol", "carol")
                .await
                .unwrap_err(),
            DecideError::Decided("approved")
        );
        let minute = Duration::from_secs(60);
        assert!(q.claim(&approved, minute).await.unwrap());
        assert!(!q.claim(&approved, minute).await.unwrap());
        // A claim whose replica went away can be taken over, by one caller.
        assert!(q.claim(&approved, Duration::ZERO).await.unwrap());
        assert!(q.finish(&approved, true).await.unwrap());
        assert_eq!(
            q.list(Some("acme")).await.unwrap()[0].status,
            Status::Executed
        );
        assert!(q.list(Some("other")).await.unwrap().is_empty());
    }
}
