//! Member accounts by role: ECR in another account is reached with credentials from a role
//! of one name assumed in that account (`TAG_GUARD_MEMBER_ROLE`), never with the guard's own.
//! One provider per account; the SDK's identity cache keeps each account's credentials until
//! they near expiry. The guard's own account needs no role.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};

/// The role the guard assumes in each member account.
#[derive(Clone, Debug)]
pub struct MemberRoles {
    /// The role's name (the same in every member account).
    pub role_name: String,
    /// The external ID the member roles' trust policies ask for, if any.
    pub external_id: Option<String>,
    /// The guard's own account: reached with its own credentials.
    pub home_account: String,
    /// The configuration whose credentials assume the roles.
    pub sdk: SdkConfig,
    by_account: Arc<Mutex<HashMap<String, SharedCredentialsProvider>>>,
}

impl MemberRoles {
    /// Roles named `role_name` in every account but `home_account`.
    pub fn new(
        role_name: String,
        external_id: Option<String>,
        home_account: String,
        sdk: SdkConfig,
    ) -> MemberRoles {
        MemberRoles {
            role_name,
            external_id,
            home_account,
            sdk,
            by_account: Arc::default(),
        }
    }

    /// The role's ARN in `account`, in the partition of the guard's region.
    pub fn role_arn(&self, account: &str) -> String {
        let partition = match self.sdk.region().map(|r| r.as_ref().to_string()) {
            Some(r) if r.starts_with("cn-") => "aws-cn",
            Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
            _ => "aws",
        };
        format!("arn:{partition}:iam::{account}:role/{}", self.role_name)
    }

    /// The credentials for `account`: `None` for the guard's own (its own credentials).
    pub fn credentials_for(&self, account: &str) -> Option<SharedCredentialsProvider> {
        if account == self.home_account {
            return None;
        }
        let mut map = self.by_account.lock().unwrap_or_else(|p| p.into_inner());
        let provider = map.entry(account.to_string()).or_insert_with(|| {
            SharedCredentialsProvider::new(Assumed {
                role_arn: self.role_arn(account),
                external_id: self.external_id.clone(),
                sdk: self.sdk.clone(),
                provider: futures::lock::Mutex::new(None),
            })
        });
        Some(provider.clone())
    }
}

/// Credentials of a role assumed in one member account, built on first use.
#[derive(Debug)]
struct Assumed {
    role_arn: String,
    external_id: Option<String>,
    sdk: SdkConfig,
    provider: futures::lock::Mutex<Option<Arc<AssumeRoleProvider>>>,
}

impl ProvideCredentials for Assumed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let provider = {
                let mut slot = self.provider.lock().await;
                match slot.as_ref() {
                    Some(p) => p.clone(),
                    None => {
                        let mut b = AssumeRoleProvider::builder(self.role_arn.clone())
                            .session_name("ecr-tag-guard")
                            .configure(&self.sdk);
                        if let Some(id) = &self.external_id {
                            b = b.external_id(id.clone());
                        }
                        let p = Arc::new(b.build().await);
                        *slot = Some(p.clone());
                        p
                    }
                }
            };
            provider.provide_credentials().await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_account_needs_no_role_and_each_member_gets_its_own() {
        let sdk = SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let roles = MemberRoles::new("guard-member".into(), None, "123456789012".into(), sdk);
        assert!(roles.credentials_for("123456789012").is_none());
        assert!(roles.credentials_for("210987654321").is_some());
        assert_eq!(
            roles.role_arn("210987654321"),
            "arn:aws:iam::210987654321:role/guard-member"
        );
        assert_eq!(
            roles.by_account.lock().unwrap().len(),
            1,
            "one provider per account"
        );
        roles.credentials_for("210987654321");
        assert_eq!(roles.by_account.lock().unwrap().len(), 1, "reused");
        let cn = MemberRoles::new(
            "r".into(),
            None,
            "1".into(),
            SdkConfig::builder()
                .region(aws_config::Region::new("cn-north-1"))
                .build(),
        );
        assert_eq!(cn.role_arn("2"), "arn:aws-cn:iam::2:role/r");
    }
}
