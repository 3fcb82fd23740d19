//! `dossier api-key create|list|revoke`, `dossier user create` and `dossier account create`.

use anyhow::{anyhow, bail};
use chrono::Utc;
use clap::Subcommand;
use dossier_domain::access::{check_account, check_key_name, parse_roles, Licence, Role};
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
        /// Names the key in timelines and the audit log (at most 64 characters, no control
        /// or invisible ones); without it the key shows as `api-key:` and its id's start.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        db: DbOption,
    },
    /// Lists API keys (never the keys themselves): id, account, roles, created, name,
    /// tab-separated.
    List {
        /// Only this account's keys.
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        db: DbOption,
    },
    /// Revokes an API key by its id (from `list`): it stops working at once, on every node.
    Revoke {
        /// The key's id.
        id: String,
        #[command(flatten)]
        db: DbOption,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Creates a web user. Without --password-stdin a password is generated and printed,
    /// alone, on stdout.
    Create {
        /// Letters, digits, '.', '_', '-' and '@'; at most 64.
        #[arg(long)]
        username: String,
        /// One or more of admin, operator, stories-editor, stories-viewer,
        /// integrations-editor, integrations-viewer, comma-separated.
        #[arg(long)]
        role: String,
        /// The account the user belongs to (every role but operator needs one).
        #[arg(long)]
        account: Option<String>,
        /// Read the password (at least 12 characters) from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
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

fn roles_arg(role: &str) -> anyhow::Result<Vec<Role>> {
    parse_roles(role).map_err(|bad| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        if bad.is_empty() {
            anyhow!("--role: give at least one of {}", known.join(", "))
        } else {
            anyhow!("--role: unknown role {bad:?}; known: {}", known.join(", "))
        }
    })
}

/// Fails with the flag named when `--account` names no account.
async fn require_account(
    store: &dyn dossier_store::Store,
    account: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(a) = account {
        store
            .get_account(a)
            .await
            .map_err(|_| anyhow!("--account: no account {a:?}"))?;
    }
    Ok(())
}

pub async fn user(c: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Create {
        username,
        role,
        account,
        password_stdin,
        db,
    } = c;
    let roles = roles_arg(&role)?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (dossier_server::passwords::generate(), true)
    };
    let record = dossier_server::passwords::new_user(&username, &password, roles, account)
        .map_err(|m| anyhow!("--{m}"))?;
    let store = open_store(&db)?;
    require_account(store.as_ref(), record.account_id.as_deref()).await?;
    store.create_user(&record).await.map_err(|e| match e {
        dossier_store::StoreError::Conflict(m) => anyhow!("--{m}"),
        other => anyhow!(other),
    })?;
    if generated {
        println!("{password}");
    }
    Ok(())
}

pub async fn api_key(c: ApiKeyCommand) -> anyhow::Result<()> {
    let (role, account, name, db) = match c {
        ApiKeyCommand::Create {
            role,
            account,
            name,
            db,
        } => (role, account, name, db),
        ApiKeyCommand::List { account, db } => return list_api_keys(account, &db).await,
        ApiKeyCommand::Revoke { id, db } => {
            let id = id.trim();
            let store = open_store(&db)?;
            return match store.delete_api_key(id).await {
                Ok(()) => {
                    eprintln!("revoked API key {id}");
                    Ok(())
                }
                Err(dossier_store::StoreError::NotFound) => {
                    bail!("no API key with id {id:?} (see `dossier api-key list`)")
                }
                Err(e) => Err(e.into()),
            };
        }
    };
    let roles = roles_arg(&role)?;
    check_account(&roles, account.as_deref()).map_err(|m| anyhow!("--{m}"))?;
    let name = name
        .as_deref()
        .map(check_key_name)
        .transpose()
        .map_err(|m| anyhow!("--{m}"))?;
    let store = open_store(&db)?;
    require_account(store.as_ref(), account.as_deref()).await?;
    let (key, hash) = new_api_key();
    let record = ApiKeyRecord {
        id: uuid_like(&hash),
        account_id: account,
        key_hash: hash,
        roles,
        created_at: Utc::now(),
        name,
    };
    store.insert_api_key(&record).await?;
    println!("{key}");
    Ok(())
}

async fn list_api_keys(account: Option<String>, db: &DbOption) -> anyhow::Result<()> {
    let store = open_store(db)?;
    require_account(store.as_ref(), account.as_deref()).await?;
    let keys = store.list_api_keys(account.as_deref()).await?;
    if keys.is_empty() {
        eprintln!("no API keys; create one with `dossier api-key create`");
    }
    for k in keys {
        let roles: Vec<&str> = k.roles.iter().map(|r| r.as_str()).collect();
        println!(
            "{}\t{}\t{}\t{}\t{}",
            k.id,
            k.account_id.as_deref().unwrap_or("-"),
            roles.join(","),
            k.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            k.name.as_deref().unwrap_or("-")
        );
    }
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
    let store = open_store(&db)?;
    let account = store.create_account(name, licence).await?;
    println!("{}", account.id);
    Ok(())
}
