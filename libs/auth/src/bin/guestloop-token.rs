//! Local token tool: `keygen` writes an Ed25519 key pair, `issue` mints a token for a role
//! and scope. Production tokens come from the chain's identity provider with the same claims.

use clap::{Parser, Subcommand, ValueEnum};
use guestloop_auth::{Role, SigningKey, TokenSigner, generate_key_pair_pem};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Guestloop local keys and tokens")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes jwt-signing.pem and jwt-public.pem into DIR (kept if they already exist).
    Keygen { dir: PathBuf },
    /// Prints a signed token.
    Issue {
        #[arg(long)]
        key: PathBuf,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long = "property")]
        properties: Vec<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long, default_value = "local-user")]
        subject: String,
        #[arg(long, default_value_t = 12 * 3600)]
        ttl_secs: u64,
        #[arg(long, default_value = "guestloop")]
        issuer: String,
        /// The `aud` claim; the services' `auth.audience` must match it.
        #[arg(long, default_value = guestloop_auth::DEFAULT_AUDIENCE)]
        audience: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    PropertyStaff,
    PropertyManager,
    RegionalManager,
    HeadOffice,
    Service,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Keygen { dir } => {
            std::fs::create_dir_all(&dir)?;
            let (private_path, public_path) =
                (dir.join("jwt-signing.pem"), dir.join("jwt-public.pem"));
            if !private_path.exists() {
                let (private, public) = generate_key_pair_pem();
                std::fs::write(&private_path, private)?;
                std::fs::write(&public_path, public)?;
            }
            println!("{}", public_path.display());
        }
        Command::Issue {
            key,
            role,
            properties,
            region,
            subject,
            ttl_secs,
            issuer,
            audience,
        } => {
            let key = SigningKey::from_file(&key.to_string_lossy())?;
            let role = match role {
                RoleArg::PropertyStaff => Role::PropertyStaff,
                RoleArg::PropertyManager => Role::PropertyManager,
                RoleArg::RegionalManager => Role::RegionalManager,
                RoleArg::HeadOffice => Role::HeadOffice,
                RoleArg::Service => Role::Service,
            };
            let token = TokenSigner::new(key, issuer)
                .with_audience(audience)
                .issue(
                    &subject,
                    role,
                    properties,
                    region,
                    Duration::from_secs(ttl_secs),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{token}");
        }
    }
    Ok(())
}
