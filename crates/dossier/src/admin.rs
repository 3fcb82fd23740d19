//! `dossier api-key create` and `dossier account create`.

use anyhow::{anyhow, bail};
use chrono::Utc;
use clap::Subcommand;
use dossier_domain::access::{parse_roles, Licence, Role};
use dossier_server::auth::new_api_key;
use dossier_store::ApiKeyRecord;

use crate::options::{open_store, DbOption};

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Creates an API key and prints it, alone, on stdout.
    Create {
        /// One or more of admin, operator, stories-editor, stories-viewer,
        /// integrations-editor, integrations-viewer, comma-separated.
        #[arg(long)]
        role: String,
        /// The account the key acts for (every role but operator needs one).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        db: DbOption,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Creates an account and prints its id.
    Create {
        #[arg(long)]
        name: String,
        /// none, xops or mdr.
        #[arg(long)]
        licence: String,
        #[command(flatten)]
        db: DbOption,
    },
}

pub async fn api_key(c: ApiKeyCommand) -> anyhow::Result<()> {
    let ApiKeyCommand::Create { role, account, db } = c;
    let roles = parse_roles(&role).map_err(|bad| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        if bad.is_empty() {
            anyhow!("--role: give at least one of {}", known.join(", "))
        } else {
            anyhow!("--role: unknown role {bad:?}; known: {}", known.join(", "))
        }
    })?;
    let operator = roles.contains(&Role::Operator);
    if account.is_none() && !operator {
        bail!("--account: required unless the role is operator");
    }
    let store = open_store(&db.db)?;
    if let Some(a) = &account {
        store
            .get_account(a)
            .await
            .map_err(|_| anyhow!("--account: no account {a:?}"))?;
    }
    let (key, hash) = new_api_key();
    let record = ApiKeyRecord {
        id: uuid_like(&hash),
        account_id: account,
        key_hash: hash,
        roles,
        created_at: Utc::now(),
    };
    store.insert_api_key(&record).await?;
    println!("{key}");
    Ok(())
}

/// A key's id: derived from its hash, so the id names the key without revealing it.
pub fn uuid_like(hash: &str) -> String {
    hash.chars().rev().take(24).collect()
}

pub async fn account(c: AccountCommand) -> anyhow::Result<()> {
    let AccountCommand::Create { name, licence, db } = c;
    let licence = Licence::parse(licence.trim())
        .ok_or_else(|| anyhow!("--licence: one of none, xops, mdr"))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bail!("--name: between 1 and 200 characters");
    }
    let store = open_store(&db.db)?;
    let account = store.create_account(name, licence).await?;
    println!("{}", account.id);
    Ok(())
}
