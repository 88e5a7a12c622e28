//! `hoist login` / `hoist logout` and the credentials file they keep.
//!
//! Credentials live in `$HOIST_CONFIG_DIR/auth.json` (default `$XDG_CONFIG_HOME/hoist` or
//! `~/.config/hoist`), created with mode 0600 and replaced atomically. The agent stores none: the
//! CLI sends the matching entry with each pull or push, like Docker's `X-Registry-Auth`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Args;
use hoist_proto::{LoginRequest, RegistryAuth};
use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientError};

/// `hoist login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, `HOST[:PORT]` (default Docker Hub, `docker.io`).
    #[arg(default_value = "docker.io")]
    pub registry: String,
    /// User name (asked for on the terminal when missing).
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Read the password from standard input (`echo $PW | hoist login --password-stdin ...`).
    #[arg(long)]
    pub password_stdin: bool,
}

/// `hoist logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(default_value = "docker.io")]
    pub registry: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    username: String,
    password: String,
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

/// Where the credentials file lives.
pub fn auth_path() -> PathBuf {
    crate::private_file::config_dir().join("auth.json")
}

fn read_file() -> Result<AuthFile, ClientError> {
    let path = auth_path();
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| transport(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(e) => Err(transport(format!("{}: {e}", path.display()))),
    }
}

fn write_file(file: &AuthFile) -> Result<(), ClientError> {
    let bytes = serde_json::to_vec_pretty(file).map_err(transport)?;
    crate::private_file::write(&auth_path(), &bytes).map_err(transport)
}

/// The registry part of an image reference, by Docker's rule (first component with `.` or `:`,
/// or `localhost`; otherwise Docker Hub), the one the agent pulls by (`hoist-registry`).
pub fn registry_of(reference: &str) -> String {
    match hoist_registry::RemoteRef::parse(reference) {
        Ok(r) => r.registry,
        // Not a valid reference: the pull or push will say why; pick the registry by the rule.
        Err(_) => {
            let name = reference.split('@').next().unwrap_or(reference);
            match name.split_once('/') {
                Some((first, _))
                    if first.contains('.') || first.contains(':') || first == "localhost" =>
                {
                    first.to_owned()
                }
                _ => hoist_registry::name::DOCKER_HUB.to_owned(),
            }
        }
    }
}

/// Stored credentials for the registry of `reference`, if any.
pub fn credentials_for(reference: &str) -> Result<Option<RegistryAuth>, ClientError> {
    let registry = registry_of(reference);
    Ok(read_file()?.auths.get(&registry).map(|e| RegistryAuth {
        username: e.username.clone(),
        password: e.password.clone(),
    }))
}

fn prompt(what: &str) -> Result<String, ClientError> {
    eprint!("{what}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(transport)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn login(args: LoginArgs, client: &Client) -> Result<i32, ClientError> {
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username")?,
    };
    let password = if args.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(transport)?;
        s.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        prompt("Password")?
    };
    if username.is_empty() || password.is_empty() {
        return Err(transport("user name and password must not be empty"));
    }
    let registry = args.registry;
    let auth = RegistryAuth { username, password };
    client
        .call::<()>(
            hyper::Method::POST,
            "/v1/registry/login",
            Some(&LoginRequest {
                registry: registry.clone(),
                auth: auth.clone(),
            }),
        )
        .await?;
    let mut file = read_file()?;
    file.auths.insert(
        registry.clone(),
        Entry {
            username: auth.username,
            password: auth.password,
        },
    );
    write_file(&file)?;
    println!(
        "Login Succeeded ({registry}; credentials in {})",
        auth_path().display()
    );
    Ok(0)
}

pub fn logout(args: LogoutArgs) -> Result<i32, ClientError> {
    let mut file = read_file()?;
    if file.auths.remove(&args.registry).is_none() {
        println!("Not logged in to {}", args.registry);
        return Ok(0);
    }
    write_file(&file)?;
    println!("Removed login credentials for {}", args.registry);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_registry_of_a_reference() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("user/app:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/app"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/app@sha256:00"), "localhost");
        assert_eq!(registry_of("index.docker.io/library/busybox"), "docker.io");
        assert_eq!(registry_of("ghcr.io/o/r:t"), "ghcr.io");
    }
}
