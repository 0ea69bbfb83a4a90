//! `patreport login`: sign in once with the device-code flow and store the refresh token in Key
//! Vault, for `--auth refresh-token` (see docs/auth.md).

use super::exit;
use crate::credentials::device_code::{DeviceCodeCredential, DeviceCodeLogin};
use crate::credentials::refresh::RefreshTokenStore;
use crate::credentials::{
    ADO_SCOPE, AuthError, AuthMode, AuthRuntime, CredentialSettings, DEFAULT_REFRESH_TOKEN_SECRET,
    VaultAuth, keyvault,
};
use crate::entra::{self, DEFAULT_AUTHORITY_HOST};
use crate::settings::{Choice, names};
use anyhow::Context;
use azure_core::credentials::TokenCredential;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use std::sync::Arc;

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Opens nothing itself: it prints a code to enter at https://microsoft.com/devicelogin \
    (on any device). Sign in as the Azure DevOps administrator whose rights the scheduled runs \
    should use (a Project Collection Administrator). The refresh token is written to the Key \
    Vault secret, never printed. Run it again whenever a run says the stored sign-in expired."
)]
pub struct LoginArgs {
    /// Directory (tenant) id of your Entra ID.
    #[arg(long, env = names::TENANT_ID)]
    pub tenant: String,

    /// Application (client) id of the public client app registration to sign in with.
    #[arg(long, env = names::LOGIN_CLIENT_ID)]
    pub client_id: String,

    /// The Key Vault that stores the sign-in, e.g. https://myvault.vault.azure.net.
    #[arg(long, env = names::KEY_VAULT_URL, value_parser = parse_vault)]
    pub key_vault_url: url::Url,

    /// Name of the Key Vault secret.
    #[arg(long, env = names::REFRESH_TOKEN_SECRET, default_value = DEFAULT_REFRESH_TOKEN_SECRET)]
    pub secret_name: String,

    /// How this command itself reaches Key Vault (your own `az login` by default).
    #[arg(
        long,
        env = names::LOGIN_VAULT_AUTH,
        default_value = "azure-cli",
        value_parser = PossibleValuesParser::new(VaultAuth::names()).try_map(|n| VaultAuth::parse(&n))
    )]
    pub vault_auth: VaultAuth,

    /// Entra authority host (sovereign clouds).
    #[arg(long, env = names::AUTHORITY_HOST, default_value = DEFAULT_AUTHORITY_HOST, value_parser = entra::parse_authority_host)]
    pub authority_host: url::Url,
}

fn parse_vault(text: &str) -> Result<url::Url, String> {
    keyvault::parse_vault_url(text)
}

/// Run the command; returns the process exit code.
pub async fn run(args: &LoginArgs) -> anyhow::Result<u8> {
    // The vault identities read their usual settings (AZURE_CLIENT_ID, …) from the environment.
    let mut settings = CredentialSettings::from_env(AuthMode::RefreshToken, None)?;
    let runtime = AuthRuntime::new(settings.extra_ca_file.as_deref())?;
    settings.authority_host = args.authority_host.clone();
    settings.tenant_id = Some(args.tenant.clone());
    settings.login_client_id = Some(args.client_id.clone());
    settings.key_vault_url = Some(args.key_vault_url.clone());
    settings.refresh_token_secret = args.secret_name.clone();
    settings.vault_auth = args.vault_auth;
    let store = settings.sign_in_store(&runtime)?;
    // Check the vault before the user spends time signing in.
    eprintln!(
        "Checking access to {} (as {}: {})…",
        store.describe(),
        names::LOGIN_VAULT_AUTH,
        args.vault_auth.name()
    );
    match store.load().await {
        Ok(_) | Err(AuthError::NoStoredSignIn { .. }) => {}
        Err(e) => return Err(e).context("checking access to the Key Vault secret"),
    }

    let login = DeviceCodeLogin::new(settings.entra(&runtime)?, args.client_id.clone());
    let credential = DeviceCodeCredential::new(
        login,
        Arc::new(|prompt| match &prompt.message {
            Some(message) => eprintln!("{message}\nWaiting for the sign-in to complete…"),
            None => eprintln!(
                "To sign in, open {} and enter the code {}\nWaiting for the sign-in to complete…",
                prompt.verification_uri, prompt.user_code
            ),
        }),
    );
    eprintln!("Asking Microsoft Entra ID for a sign-in code…");
    // An Azure DevOps token proves the consent to user_impersonation is in place.
    credential
        .get_token(&[ADO_SCOPE], None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("signing in")?;
    let sign_in = credential.sign_in().await?;
    eprintln!("Signed in; storing the sign-in in {}…", store.describe());
    store.save(&sign_in).await?;
    println!(
        "Signed in as {}. The sign-in is stored in {}; runs with --auth refresh-token \
         (PATREPORT_AUTH=refresh-token) use it.",
        sign_in.user.as_deref().unwrap_or("the account you chose"),
        store.describe()
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn login_needs_an_https_vault_and_has_defaults() {
        let base = ["patreport", "login", "--tenant", "t", "--client-id", "c"];
        let with = |vault: &'static str| {
            let mut args = base.to_vec();
            args.extend(["--key-vault-url", vault]);
            Cli::try_parse_from(args)
        };
        let e = with("http://v.vault.azure.net").unwrap_err().to_string();
        assert!(e.contains("https"), "{e}");
        let cli = with("https://v.vault.azure.net").unwrap();
        let Command::Login(args) = cli.command else {
            panic!("expected login")
        };
        assert_eq!(args.secret_name, DEFAULT_REFRESH_TOKEN_SECRET);
        assert_eq!(
            args.authority_host.as_str(),
            "https://login.microsoftonline.com/"
        );
    }

    #[test]
    fn report_accepts_every_mode() {
        for mode in [
            "pat",
            "managed-identity",
            "client-secret",
            "workload-identity",
            "azure-cli",
            "developer-tools",
            "refresh-token",
        ] {
            let cli = Cli::try_parse_from(["patreport", "report", "--org", "o", "--auth", mode]);
            assert!(cli.is_ok(), "{mode}");
        }
        // On-behalf-of needs an HTTP caller: `report` refuses it and lists what it takes.
        let e = Cli::try_parse_from([
            "patreport",
            "report",
            "--org",
            "o",
            "--auth",
            "on-behalf-of",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("refresh-token"), "{e}");
    }
}
