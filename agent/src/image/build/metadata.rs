//! The instructions that change only the image config (ENV, LABEL, WORKDIR, USER, STOPSIGNAL,
//! EXPOSE, CMD, ENTRYPOINT, VOLUME, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER). Pure.
//!
//! Why apart from the builder: the same rules serve a build step and `hoist commit --change`,
//! and each answers the instruction as it is recorded in history and in the cache key (after
//! variable substitution).

use hoist_common::dockerignore;
use hoist_proto::quantity::parse_duration_ms;
use hoist_proto::{ImageConfig, ImageHealthcheck};

use super::dockerfile::{Args, Cmd, Instruction};
use super::instruction::{exec_or_shell, normalize_port, quote_if_needed};
use super::vars::{self, Lookup};

/// Whether `cmd` only changes the config.
pub fn is_metadata(cmd: Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Env
            | Cmd::Label
            | Cmd::Workdir
            | Cmd::User
            | Cmd::StopSignal
            | Cmd::Expose
            | Cmd::Cmd
            | Cmd::Entrypoint
            | Cmd::Volume
            | Cmd::Healthcheck
            | Cmd::Shell
            | Cmd::Onbuild
            | Cmd::Maintainer
    )
}

/// Applies a metadata instruction to `c`: the instruction as resolved (for history and the
/// cache key). `cmd_set` tracks whether this build set CMD (ENTRYPOINT resets only an
/// inherited CMD, as Docker does).
pub fn apply(
    inst: &Instruction,
    c: &mut ImageConfig,
    lookup: Lookup<'_>,
    escape: char,
    cmd_set: &mut bool,
) -> Result<String, String> {
    let text = || match &inst.args {
        Args::Text(t) => Ok(t.clone()),
        Args::Json(_) => Err(format!("{} does not take a JSON array", inst.cmd.name())),
    };
    let word = |raw: &str| vars::process_word(raw.trim(), lookup, escape);
    Ok(match inst.cmd {
        Cmd::Env | Cmd::Label => {
            let pairs = vars::key_values(&text()?, lookup, escape)?;
            if inst.cmd == Cmd::Env {
                // Each pair replaces its key's earlier value, in one pass (linear in both).
                let set = pairs.iter().map(|(k, v)| format!("{k}={v}"));
                c.env = hoist_common::parse::merge_env(
                    std::mem::take(&mut c.env).into_iter().chain(set),
                );
            } else {
                for (k, v) in &pairs {
                    c.labels.insert(k.clone(), v.clone());
                }
            }
            let shown: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", quote_if_needed(v)))
                .collect();
            format!("{} {}", inst.cmd.name(), shown.join(" "))
        }
        Cmd::Maintainer => {
            let m = word(&text()?)?;
            c.labels.insert("maintainer".into(), m.clone());
            format!("MAINTAINER {m}")
        }
        Cmd::Workdir => {
            let w = word(&text()?)?;
            let base = c.working_dir.clone().unwrap_or_else(|| "/".into());
            let joined = if w.starts_with('/') {
                w
            } else {
                format!("{base}/{w}")
            };
            let clean = format!("/{}", dockerignore::clean(&joined).unwrap_or_default());
            c.working_dir = Some(clean.clone());
            format!("WORKDIR {clean}")
        }
        Cmd::User => {
            let u = word(&text()?)?;
            c.user = Some(u.clone());
            format!("USER {u}")
        }
        Cmd::StopSignal => {
            let s = word(&text()?)?;
            crate::containers::prepare::parse_signal(&s)?;
            c.stop_signal = Some(s.clone());
            format!("STOPSIGNAL {s}")
        }
        Cmd::Expose => {
            let mut ports = Vec::new();
            for w in vars::process_words(&text()?, lookup, escape)? {
                let p = normalize_port(&w)?;
                if !c.exposed_ports.contains(&p) {
                    c.exposed_ports.push(p.clone());
                }
                ports.push(p);
            }
            c.exposed_ports.sort();
            format!("EXPOSE {}", ports.join(" "))
        }
        Cmd::Volume => {
            let paths = match &inst.args {
                Args::Json(v) => v
                    .iter()
                    .map(|w| vars::process_word(w, lookup, escape))
                    .collect::<Result<Vec<_>, _>>()?,
                Args::Text(t) => vars::process_words(t, lookup, escape)?,
            };
            let mut shown = Vec::new();
            for p in paths {
                let abs = if p.starts_with('/') {
                    p.clone()
                } else {
                    format!("{}/{p}", c.working_dir.as_deref().unwrap_or("/"))
                };
                let clean = dockerignore::clean(&abs)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| format!("VOLUME {p:?}: not a path below /"))?;
                let clean = format!("/{clean}");
                if !c.volumes.contains(&clean) {
                    c.volumes.push(clean.clone());
                }
                shown.push(clean);
            }
            c.volumes.sort();
            format!(
                "VOLUME {}",
                serde_json::to_string(&shown).unwrap_or_default()
            )
        }
        Cmd::Shell => {
            let Args::Json(v) = &inst.args else {
                return Err("SHELL takes a JSON array".into());
            };
            c.shell = Some(v.clone());
            format!("SHELL {}", serde_json::to_string(v).unwrap_or_default())
        }
        Cmd::Cmd | Cmd::Entrypoint => {
            let argv = exec_or_shell(&inst.args, c.shell.as_deref());
            if inst.cmd == Cmd::Cmd {
                c.cmd = Some(argv.clone());
                *cmd_set = true;
            } else {
                c.entrypoint = Some(argv.clone());
                if !*cmd_set {
                    c.cmd = None;
                }
            }
            format!(
                "{} {}",
                inst.cmd.name(),
                serde_json::to_string(&argv).unwrap_or_default()
            )
        }
        Cmd::Healthcheck => {
            let h = healthcheck(inst)?;
            let shown = if h.test == ["NONE"] {
                "HEALTHCHECK NONE".to_owned()
            } else {
                format!(
                    "HEALTHCHECK {}",
                    serde_json::to_string(&h).unwrap_or_default()
                )
            };
            c.healthcheck = Some(h);
            shown
        }
        Cmd::Onbuild => {
            let trigger = text()?.trim().to_owned();
            c.on_build.push(trigger.clone());
            format!("ONBUILD {trigger}")
        }
        other => return Err(format!("{} is not a metadata instruction", other.name())),
    })
}

/// `HEALTHCHECK [--flags] CMD ...` or `NONE` → Docker's record of it.
fn healthcheck(inst: &Instruction) -> Result<ImageHealthcheck, String> {
    let Args::Text(t) = &inst.args else {
        return Err("HEALTHCHECK takes CMD command or NONE".into());
    };
    let t = t.trim();
    if t.eq_ignore_ascii_case("NONE") {
        return Ok(ImageHealthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        });
    }
    let rest = t
        .get(..3)
        .filter(|w| w.eq_ignore_ascii_case("CMD"))
        .map(|_| t[3..].trim())
        .ok_or("HEALTHCHECK takes CMD command or NONE")?;
    let test = match serde_json::from_str::<Vec<String>>(rest) {
        Ok(argv) if rest.starts_with('[') && !argv.is_empty() => {
            let mut t = vec!["CMD".to_owned()];
            t.extend(argv);
            t
        }
        _ => vec!["CMD-SHELL".to_owned(), rest.to_owned()],
    };
    let ns = |name: &str| -> Result<u64, String> {
        match inst.flag(name) {
            None => Ok(0),
            Some(v) => parse_duration_ms(v)
                .map(|ms| ms * 1_000_000)
                .ok_or_else(|| format!("HEALTHCHECK --{name}={v}: not a duration")),
        }
    };
    Ok(ImageHealthcheck {
        test,
        interval_ns: ns("interval")?,
        timeout_ns: ns("timeout")?,
        start_period_ns: ns("start-period")?,
        start_interval_ns: ns("start-interval")?,
        retries: match inst.flag("retries") {
            None => 0,
            Some(r) => r
                .parse()
                .map_err(|_| format!("HEALTHCHECK --retries={r}: not a number"))?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::dockerfile::parse_one;
    use super::*;

    fn run(lines: &[&str]) -> ImageConfig {
        let mut c = ImageConfig::default();
        let mut cmd_set = false;
        let none = |_: &str| None;
        for l in lines {
            let inst = parse_one(1, l).unwrap();
            apply(&inst, &mut c, &none, '\\', &mut cmd_set).unwrap();
        }
        c
    }

    #[test]
    fn volumes_are_absolute_sorted_and_unique() {
        let c = run(&[
            "WORKDIR /srv",
            "VOLUME data /logs",
            r#"VOLUME ["/logs", "/a"]"#,
        ]);
        assert_eq!(c.volumes, ["/a", "/logs", "/srv/data"]);
    }

    #[test]
    fn healthchecks_record_docker_shape() {
        let c = run(&["HEALTHCHECK --interval=5s --retries=2 CMD wget -q -O- localhost"]);
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "wget -q -O- localhost"]);
        assert_eq!(
            (h.interval_ns, h.retries, h.timeout_ns),
            (5_000_000_000, 2, 0)
        );
        let c = run(&[r#"HEALTHCHECK CMD ["/bin/check", "-v"]"#]);
        assert_eq!(c.healthcheck.unwrap().test, ["CMD", "/bin/check", "-v"]);
        let c = run(&["HEALTHCHECK NONE"]);
        assert_eq!(c.healthcheck.unwrap().test, ["NONE"]);
    }

    #[test]
    fn shell_changes_shell_forms_and_onbuild_and_maintainer_are_recorded() {
        let c = run(&[
            r#"SHELL ["/bin/bash", "-eu", "-c"]"#,
            "CMD echo hi",
            "ONBUILD COPY . /app",
            "MAINTAINER Jo <jo@example.com>",
        ]);
        assert_eq!(c.cmd.unwrap(), ["/bin/bash", "-eu", "-c", "echo hi"]);
        assert_eq!(c.on_build, ["COPY . /app"]);
        assert_eq!(c.labels["maintainer"], "Jo <jo@example.com>");
    }
}
