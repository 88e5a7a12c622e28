//! Resolving `-u` (or the image's `User`) against the image's `/etc/passwd` and `/etc/group`.
//! Pure: the caller reads the files from the image's layers.

use hoist_common::parse::{parse_user, UserSpec};

/// The credentials the container's process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4).then(|| {
            Some(PasswdEntry {
                name: f[0],
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).copied().unwrap_or(""),
            })
        })?
    })
}

/// `(name, gid, members)` of each group line.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4).then(|| {
            let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
            Some((f[0], f[2].parse().ok()?, members))
        })?
    })
}

/// Resolves `user` (`None` or empty means root) to ids, the way Docker does: names are looked up in
/// the image; a numeric uid absent from `/etc/passwd` runs with gid 0; supplementary groups are the
/// groups that list the user.
pub fn resolve(user: Option<&str>, passwd: &str, group: &str) -> Result<Identity, String> {
    let spec = match user.filter(|u| !u.is_empty()) {
        None => UserSpec::Ids { uid: 0, gid: None },
        Some(u) => parse_user(u)?,
    };
    let (uid, name, default_gid, group_spec) = match &spec {
        UserSpec::Ids { uid, gid } => {
            let entry = passwd_entries(passwd).find(|e| e.uid == *uid);
            (
                *uid,
                entry.as_ref().map(|e| e.name),
                entry.map_or(0, |e| e.gid),
                gid.map(|g| g.to_string()),
            )
        }
        UserSpec::Named { user, group } => {
            let e = passwd_entries(passwd)
                .find(|e| e.name == user)
                .ok_or_else(|| format!("unable to find user {user}: no matching entries in the image's /etc/passwd"))?;
            (e.uid, Some(e.name), e.gid, group.clone())
        }
    };
    let gid = match group_spec {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(group)
                .find(|(n, _, _)| *n == g)
                .map(|(_, id, _)| id)
                .ok_or_else(|| {
                    format!(
                        "unable to find group {g}: no matching entries in the image's /etc/group"
                    )
                })?,
        },
    };
    let mut additional_gids: Vec<u32> = match name {
        Some(name) => group_entries(group)
            .filter(|(_, _, m)| m.contains(&name))
            .map(|(_, id, _)| id)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.retain(|g| *g != gid);
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(Identity {
        uid,
        gid,
        additional_gids,
    })
}

/// The `HOME` a process of `uid` gets when its environment has none, as runc sets it: the
/// user's home directory in the image's `/etc/passwd`, else `/`.
pub fn home(uid: u32, passwd: &str) -> String {
    passwd_entries(passwd)
        .find(|e| e.uid == uid)
        .map(|e| e.home)
        .filter(|h| !h.is_empty())
        .unwrap_or("/")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbad line\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nwww:x:33:\nstaff:x:50:alice,bob\nwheel:x:10:alice\nalice:x:1000:\n";

    #[test]
    fn home_comes_from_passwd_else_root_dir() {
        assert_eq!(home(0, PASSWD), "/root");
        assert_eq!(home(1000, PASSWD), "/home/alice");
        assert_eq!(home(4242, PASSWD), "/");
        assert_eq!(home(0, ""), "/");
    }

    #[test]
    fn default_is_root() {
        assert_eq!(
            resolve(None, PASSWD, GROUP),
            Ok(Identity {
                uid: 0,
                gid: 0,
                additional_gids: vec![]
            })
        );
        assert_eq!(
            resolve(Some(""), "", ""),
            Ok(Identity {
                uid: 0,
                gid: 0,
                additional_gids: vec![]
            })
        );
    }

    #[test]
    fn names_and_groups() {
        assert_eq!(
            resolve(Some("alice"), PASSWD, GROUP),
            Ok(Identity {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10, 50]
            })
        );
        assert_eq!(
            resolve(Some("www:staff"), PASSWD, GROUP),
            Ok(Identity {
                uid: 33,
                gid: 50,
                additional_gids: vec![]
            })
        );
        assert_eq!(
            resolve(Some("1000"), PASSWD, GROUP)
                .unwrap()
                .additional_gids,
            vec![10, 50]
        );
    }

    #[test]
    fn numeric_ids_need_no_entry() {
        assert_eq!(
            resolve(Some("4242"), PASSWD, GROUP),
            Ok(Identity {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            })
        );
        assert_eq!(
            resolve(Some("4242:7"), "", ""),
            Ok(Identity {
                uid: 4242,
                gid: 7,
                additional_gids: vec![]
            })
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = resolve(Some("nobody"), PASSWD, GROUP).unwrap_err();
        assert!(e.contains("unable to find user nobody"), "{e}");
        let e = resolve(Some("alice:nogroup"), PASSWD, GROUP).unwrap_err();
        assert!(e.contains("unable to find group nogroup"), "{e}");
    }
}
