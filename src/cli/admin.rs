//! The operators' commands: owner systems' API tokens (`esurety token`) and the desk's
//! users (`esurety user`), with the password read from the terminal or stdin.

use super::{TokenCommand, UserCommand, open, print_json, sources};
use anyhow::{Result, bail};
use std::path::Path;

pub(super) fn token(config: &Path, action: TokenCommand) -> Result<i32> {
    let (clock, rng) = sources()?;
    let (_, mut store) = open(config)?;
    match action {
        TokenCommand::Add { name } => {
            let (token, hash) = crate::registry::tokens::new_token(rng.as_ref());
            let id = store.write(|tx| tx.add_token(&name, &hash, clock.now()))?;
            eprintln!("esurety: token {id} for {name}; it is shown only now (the store keeps its hash): give it to {name}'s system");
            println!("{token}");
            Ok(0)
        }
        TokenCommand::List { json } => {
            let rows = store.tokens()?;
            if json {
                print_json(&serde_json::to_value(&rows)?);
            } else {
                for t in &rows {
                    println!("{}  {}  created {}  last used {}  {}", t.id, t.name, t.created_at, t.last_used_at.as_deref().unwrap_or("never"),
                             t.revoked_at.as_deref().map(|r| format!("revoked {r}")).unwrap_or_else(|| "live".into()));
                }
                if rows.is_empty() {
                    println!("(no tokens)");
                }
            }
            Ok(0)
        }
        TokenCommand::Revoke { id } => {
            if store.write(|tx| tx.revoke_token(id, clock.now()))? {
                println!("token {id} revoked");
                Ok(0)
            } else {
                eprintln!("esurety: no live token {id}");
                Ok(1)
            }
        }
    }
}

pub(super) fn user(config: &Path, action: UserCommand) -> Result<i32> {
    let (clock, rng) = sources()?;
    let (config, mut store) = open(config)?;
    match action {
        UserCommand::Add { name, roles, password_stdin } => {
            let roles = roles.iter().map(|r| crate::desk::users::Role::parse(r, &config).map(|r| r.stored())).collect::<std::result::Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                bail!("a user name is 1 to 64 characters, no control characters");
            }
            let password = read_password(password_stdin)?;
            let hash = crate::desk::users::hash_password(&password, rng.as_ref())?;
            let now = clock.now().to_rfc3339();
            if !store.write(|tx| tx.add_user(name.trim(), &hash, &roles, &now))? {
                bail!("there is already a user {name}");
            }
            println!("user {} added ({})", name.trim(), roles.join(", "));
            Ok(0)
        }
        UserCommand::List { json } => {
            let rows = store.users()?;
            if json {
                print_json(&serde_json::to_value(&rows)?);
            } else {
                for u in &rows {
                    println!("{}  {}  {}  created {}", u.name, u.roles.join(","), if u.disabled { "disabled" } else { "active" }, u.created_at);
                }
                if rows.is_empty() {
                    println!("(no users)");
                }
            }
            Ok(0)
        }
        UserCommand::Disable { name } => {
            if !store.write(|tx| tx.disable_user(&name))? {
                bail!("no user {name}");
            }
            println!("user {name} disabled; their sessions ended");
            Ok(0)
        }
        UserCommand::Passwd { name, password_stdin } => {
            let password = read_password(password_stdin)?;
            let hash = crate::desk::users::hash_password(&password, rng.as_ref())?;
            if !store.write(|tx| tx.set_password(&name, &hash))? {
                bail!("no user {name}");
            }
            println!("password of {name} changed; their sessions ended");
            Ok(0)
        }
    }
}

/// One line from standard input, or (on a terminal) the password typed twice unseen.
fn read_password(from_stdin: bool) -> Result<String> {
    use std::io::{BufRead, IsTerminal};
    let line = |prompt: &str| -> Result<String> {
        let tty = std::io::stdin().is_terminal();
        if tty {
            eprint!("{prompt}");
        }
        let old = tty.then(|| unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(0, &mut t);
            let old = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            old
        });
        let mut s = String::new();
        let read = std::io::stdin().lock().read_line(&mut s);
        if let Some(old) = old {
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &old) };
            eprintln!();
        }
        read?;
        Ok(s.trim_end_matches(['\r', '\n']).to_string())
    };
    if from_stdin || !std::io::stdin().is_terminal() {
        return line("");
    }
    let a = line("password: ")?;
    let b = line("again: ")?;
    if a != b {
        bail!("the two passwords differ");
    }
    Ok(a)
}

