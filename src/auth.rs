//! Credential modes: turn settings into the credential the Azure DevOps client sends.
//!
//! A secret is read from the environment or a file, never from the command line (where it
//! would land in shell history and process listings), and is wrapped in [`Secret`].

use crate::ado::AdoCredential;
use crate::secret::Secret;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Environment variable holding a PAT.
pub const PAT_ENV: &str = "AZURE_DEVOPS_PAT";

/// How patreport authenticates to Azure DevOps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// A personal access token from `AZURE_DEVOPS_PAT` or `--pat-file`.
    Pat,
    /// The signed-in Azure CLI account (`az login`), for local use.
    AzureCli,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no PAT given: set {PAT_ENV} or pass --pat-file FILE (env AZURE_DEVOPS_PAT_FILE)")]
    MissingPat,
    #[error("could not read the PAT file {path}: {source}")]
    PatFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the PAT in {0} is empty")]
    EmptyPat(String),
    #[error("could not set up the Azure CLI credential: {0}")]
    AzureCli(String),
}

/// Build the credential for `mode`. `pat_file` wins over the environment when both are set.
pub fn resolve(mode: AuthMode, pat_file: Option<&Path>) -> Result<AdoCredential, AuthError> {
    match mode {
        AuthMode::Pat => pat_from(pat_file, std::env::var(PAT_ENV).ok()).map(AdoCredential::Pat),
        AuthMode::AzureCli => {
            let credential = azure_identity::AzureCliCredential::new(None)
                .map_err(|e| AuthError::AzureCli(e.to_string()))?;
            Ok(AdoCredential::Token(
                credential as Arc<dyn azure_core::credentials::TokenCredential>,
            ))
        }
    }
}

fn pat_from(file: Option<&Path>, env_value: Option<String>) -> Result<Secret, AuthError> {
    let (value, origin) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| AuthError::PatFile {
                path: path.to_owned(),
                source,
            })?;
            (text, path.display().to_string())
        }
        None => (env_value.ok_or(AuthError::MissingPat)?, PAT_ENV.to_owned()),
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AuthError::EmptyPat(origin));
    }
    Ok(Secret::new(trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pat_file_is_trimmed_and_wins_over_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pat");
        std::fs::write(&path, "  from-file\n").unwrap();
        let s = pat_from(Some(&path), Some("from-env".into())).unwrap();
        assert_eq!(s.expose(), "from-file");
    }

    #[test]
    fn missing_and_empty_pats_name_the_setting() {
        let e = pat_from(None, None).unwrap_err().to_string();
        assert!(
            e.contains("AZURE_DEVOPS_PAT") && e.contains("--pat-file"),
            "{e}"
        );
        let e = pat_from(None, Some(" \n".into())).unwrap_err().to_string();
        assert!(e.contains("AZURE_DEVOPS_PAT"), "{e}");
    }
}
