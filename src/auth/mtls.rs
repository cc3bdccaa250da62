//! Principals from client certificates. The TLS listener verifies a client's chain against
//! `server.tls.client_ca_file` and hands over the leaf's names ([`PeerIdentity`]); a
//! configured identity (`auth.mtls_identities`: a URI name such as a SPIFFE id, or a DNS
//! name) maps them to a principal with the `mtls` method.

use std::collections::HashMap;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{AuthMethod, Principal};
use crate::config::MtlsIdentityConfig;

/// The names of a verified client certificate (its leaf's subject alternative names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    pub uris: Vec<String>,
    pub dns: Vec<String>,
}

impl PeerIdentity {
    /// The names of a DER certificate; `None` when it does not parse.
    pub fn from_der(der: &[u8]) -> Option<PeerIdentity> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut id = PeerIdentity::default();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => id.uris.push(uri.to_string()),
                    GeneralName::DNSName(dns) => id.dns.push(dns.to_ascii_lowercase()),
                    _ => {}
                }
            }
        }
        Some(id)
    }
}

/// The configured certificate identities.
#[derive(Debug, Default)]
pub struct MtlsIdentities {
    by_name: HashMap<String, Principal>,
}

impl MtlsIdentities {
    pub fn from_config(identities: &[MtlsIdentityConfig]) -> MtlsIdentities {
        let by_name = identities
            .iter()
            .filter_map(|m| {
                let (key, subject) = match (&m.uri, &m.dns) {
                    (Some(uri), _) => (format!("uri:{uri}"), uri.clone()),
                    (None, Some(dns)) => {
                        let dns = dns.to_ascii_lowercase();
                        (format!("dns:{dns}"), dns)
                    }
                    (None, None) => return None,
                };
                let principal = Principal {
                    tenant: m.tenant.clone(),
                    subject,
                    method: AuthMethod::Mtls,
                    roles: m.roles.clone(),
                    scopes: m.scopes.clone(),
                    claims: serde_json::Map::new(),
                    issuer: None,
                };
                Some((key, principal))
            })
            .collect();
        MtlsIdentities { by_name }
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The principal of the first of the certificate's names that is configured: URI
    /// names before DNS names.
    pub fn check(&self, peer: &PeerIdentity) -> Option<Principal> {
        let uris = peer.uris.iter().map(|u| format!("uri:{u}"));
        let dns = peer.dns.iter().map(|d| format!("dns:{d}"));
        uris.chain(dns)
            .find_map(|name| self.by_name.get(&name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(uri: Option<&str>, dns: Option<&str>, tenant: &str) -> MtlsIdentityConfig {
        MtlsIdentityConfig {
            uri: uri.map(str::to_string),
            dns: dns.map(str::to_string),
            tenant: Some(tenant.into()),
            roles: vec!["storefront".into()],
            scopes: Vec::new(),
        }
    }

    #[test]
    fn uri_names_win_over_dns_names_and_unknown_names_match_nothing() {
        let ids = MtlsIdentities::from_config(&[
            identity(Some("spiffe://shop.example/sa/web"), None, "acme"),
            identity(None, Some("Batch.Shop.Example"), "acme-batch"),
        ]);
        let both = PeerIdentity {
            uris: vec!["spiffe://shop.example/sa/web".into()],
            dns: vec!["batch.shop.example".into()],
        };
        let p = ids.check(&both).unwrap();
        assert_eq!(p.subject, "spiffe://shop.example/sa/web");
        assert_eq!(p.method, AuthMethod::Mtls);
        assert_eq!(p.tenant.as_deref(), Some("acme"));
        let dns_only = PeerIdentity {
            uris: vec!["spiffe://shop.example/sa/other".into()],
            dns: vec!["batch.shop.example".into()],
        };
        assert_eq!(
            ids.check(&dns_only).unwrap().tenant.as_deref(),
            Some("acme-batch")
        );
        assert!(ids.check(&PeerIdentity::default()).is_none());
        assert!(PeerIdentity::from_der(b"not a certificate").is_none());
    }
}
