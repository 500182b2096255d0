//! `cohort keys create|list|revoke`.

use std::sync::Arc;

use anyhow::Context;
use cohort_app::{App, SystemClock};
use cohort_core::{KeyScope, Name, Timestamp};

use crate::cli::KeysCommand;
use crate::config::Config;
use crate::data::open;

pub async fn run(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let app = App::new(open(config).await?, Arc::new(SystemClock));
    match command {
        KeysCommand::Create { name, scope } => {
            let name = Name::parse("name", &name)?;
            let scopes = scope
                .iter()
                .map(|s| KeyScope::parse("scope", s))
                .collect::<Result<Vec<_>, _>>()?;
            let created = app.keys.create(name, scopes).await.context("cannot create the key")?;
            let scopes: Vec<String> = created.key.scopes.iter().map(ToString::to_string).collect();
            println!(
                "created key {} ({}) with scopes {}; it is shown only now:",
                created.key.id,
                created.key.name,
                scopes.join(" ")
            );
            println!("{}", created.secret);
        }
        KeysCommand::List => {
            println!("{:<14} {:<24} {:<32} {:<28} revoked", "id", "name", "scopes", "created");
            for key in app.keys.list().await? {
                let scopes: Vec<String> = key.scopes.iter().map(ToString::to_string).collect();
                println!(
                    "{:<14} {:<24} {:<32} {:<28} {}",
                    key.id,
                    key.name,
                    scopes.join(" "),
                    key.created_at.to_rfc3339(),
                    key.revoked_at.map_or_else(|| "-".to_owned(), Timestamp::to_rfc3339)
                );
            }
        }
        KeysCommand::Revoke { id } => {
            app.keys
                .revoke(&id)
                .await
                .with_context(|| format!("cannot revoke key {id}"))?;
            println!("revoked key {id}");
        }
    }
    Ok(())
}
