//! The entity taxonomy every detector reports into, whatever found it (regex recognizers
//! or the NER model): one name per kind of personal data, as profiles and audit records
//! spell it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Entity {
    Person,
    Email,
    Phone,
    Address,
    CreditCard,
    Iban,
    BankAccount,
    RoutingNumber,
    UsSsn,
    TaxId,
    GovernmentId,
    Passport,
    DriversLicense,
    IpAddress,
    UrlCredentials,
    Secret,
    DateOfBirth,
    /// A profile's deny-list term.
    Custom,
}

impl Entity {
    pub const ALL: [Entity; 18] = [
        Entity::Person,
        Entity::Email,
        Entity::Phone,
        Entity::Address,
        Entity::CreditCard,
        Entity::Iban,
        Entity::BankAccount,
        Entity::RoutingNumber,
        Entity::UsSsn,
        Entity::TaxId,
        Entity::GovernmentId,
        Entity::Passport,
        Entity::DriversLicense,
        Entity::IpAddress,
        Entity::UrlCredentials,
        Entity::Secret,
        Entity::DateOfBirth,
        Entity::Custom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Entity::Person => "PERSON",
            Entity::Email => "EMAIL",
            Entity::Phone => "PHONE",
            Entity::Address => "ADDRESS",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::Iban => "IBAN",
            Entity::BankAccount => "BANK_ACCOUNT",
            Entity::RoutingNumber => "ROUTING_NUMBER",
            Entity::UsSsn => "US_SSN",
            Entity::TaxId => "TAX_ID",
            Entity::GovernmentId => "GOVERNMENT_ID",
            Entity::Passport => "PASSPORT",
            Entity::DriversLicense => "DRIVERS_LICENSE",
            Entity::IpAddress => "IP_ADDRESS",
            Entity::UrlCredentials => "URL_CREDENTIALS",
            Entity::Secret => "SECRET",
            Entity::DateOfBirth => "DATE_OF_BIRTH",
            Entity::Custom => "CUSTOM",
        }
    }

    pub fn from_name(name: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Entity::ALL {
            assert_eq!(Entity::from_name(e.name()), Some(e));
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{}\"", e.name()));
        }
    }
}
