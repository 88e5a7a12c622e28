//! The Dockerfile parser: text → instructions with their line numbers. Pure.
//!
//! Why separate from the builder: what a Dockerfile *says* (lines, continuations, comments, parser
//! directives, flags, JSON vs shell form, which instructions exist) is checked here once, before
//! anything runs, so a typo or an unsupported feature fails the build at once with
//! `Dockerfile:LINE: message`. Variable substitution needs the build's state (ENV so far, ARG
//! values) and happens later, in `vars`.

use std::fmt;

/// An error naming the Dockerfile line: `Dockerfile:7: COPY --from is not supported`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dockerfile:{}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The instructions Hoist builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    From,
    Run,
    Copy,
    Add,
    Env,
    Arg,
    Workdir,
    User,
    Label,
    Expose,
    Cmd,
    Entrypoint,
    StopSignal,
}

impl Cmd {
    /// The keyword as Docker prints it.
    pub fn name(self) -> &'static str {
        match self {
            Cmd::From => "FROM",
            Cmd::Run => "RUN",
            Cmd::Copy => "COPY",
            Cmd::Add => "ADD",
            Cmd::Env => "ENV",
            Cmd::Arg => "ARG",
            Cmd::Workdir => "WORKDIR",
            Cmd::User => "USER",
            Cmd::Label => "LABEL",
            Cmd::Expose => "EXPOSE",
            Cmd::Cmd => "CMD",
            Cmd::Entrypoint => "ENTRYPOINT",
            Cmd::StopSignal => "STOPSIGNAL",
        }
    }

    fn parse(word: &str) -> Result<Self, String> {
        Ok(match word.to_ascii_uppercase().as_str() {
            "FROM" => Cmd::From,
            "RUN" => Cmd::Run,
            "COPY" => Cmd::Copy,
            "ADD" => Cmd::Add,
            "ENV" => Cmd::Env,
            "ARG" => Cmd::Arg,
            "WORKDIR" => Cmd::Workdir,
            "USER" => Cmd::User,
            "LABEL" => Cmd::Label,
            "EXPOSE" => Cmd::Expose,
            "CMD" => Cmd::Cmd,
            "ENTRYPOINT" => Cmd::Entrypoint,
            "STOPSIGNAL" => Cmd::StopSignal,
            u @ ("HEALTHCHECK" | "ONBUILD" | "VOLUME" | "SHELL" | "MAINTAINER") => {
                return Err(format!("{u} is not supported"))
            }
            _ => return Err(format!("unknown instruction {word:?}")),
        })
    }
}

/// An instruction's arguments: the JSON (exec) form or the text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    Json(Vec<String>),
    Text(String),
}

/// One instruction of the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The line it starts on (1-based).
    pub line: usize,
    pub cmd: Cmd,
    /// `--name=value` flags (only `COPY`/`ADD` `--chown` and `--chmod` are accepted).
    pub flags: Vec<(String, String)>,
    pub args: Args,
    /// The instruction as written, continuations joined (for step output and history).
    pub text: String,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed Dockerfile: ARGs before FROM, then the FROM and everything after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
    /// The escape character (`\` unless a `# escape=` directive says otherwise).
    pub escape: char,
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let mut escape = '\\';
    let mut lines = text.lines().enumerate().peekable();
    // Parser directives: `# key=value` lines at the very top, before any blank line or comment.
    while let Some((_, line)) = lines.peek() {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        if key == "escape" {
            escape = match value.trim() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(ParseError {
                        line: 1,
                        message: format!("invalid escape directive {other:?}: use \\ or `"),
                    })
                }
            };
        }
        // `syntax` and unknown directives select frontends we do not have: ignored.
        lines.next();
    }

    let mut out = Vec::new();
    let mut seen_from = false;
    while let Some((idx, line)) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let start = idx + 1;
        let mut logical = String::new();
        let mut current = line.to_owned();
        loop {
            let t = current.trim_end();
            match t.strip_suffix(escape) {
                Some(head) => {
                    logical.push_str(head);
                    // Comment and blank lines inside a continuation are dropped, like Docker.
                    let mut next = None;
                    for (_, l) in lines.by_ref() {
                        let lt = l.trim();
                        if lt.starts_with('#') || lt.is_empty() {
                            continue;
                        }
                        next = Some(l.to_owned());
                        break;
                    }
                    match next {
                        Some(n) => current = n,
                        None => break,
                    }
                }
                None => {
                    logical.push_str(t);
                    break;
                }
            }
        }
        let inst = parse_instruction(start, logical.trim())?;
        match inst.cmd {
            Cmd::From if seen_from => {
                return Err(err(
                    start,
                    "multi-stage builds are not supported (a second FROM)",
                ))
            }
            Cmd::From => seen_from = true,
            Cmd::Arg => {}
            other if !seen_from => {
                return Err(err(
                    start,
                    &format!(
                    "{} before FROM: a Dockerfile must start with FROM (only ARG may come first)",
                    other.name()
                ),
                ))
            }
            _ => {}
        }
        out.push(inst);
    }
    if !seen_from {
        return Err(err(text.lines().count().max(1), "no FROM instruction"));
    }
    Ok(Dockerfile {
        instructions: out,
        escape,
    })
}

fn err(line: usize, message: &str) -> ParseError {
    ParseError {
        line,
        message: message.to_owned(),
    }
}

fn parse_instruction(line: usize, logical: &str) -> Result<Instruction, ParseError> {
    let (word, rest) = logical
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim_start()))
        .unwrap_or((logical, ""));
    let cmd = Cmd::parse(word).map_err(|m| err(line, &m))?;
    let text = format!("{} {}", cmd.name(), rest).trim_end().to_owned();

    // Flags: leading `--name=value` words.
    let mut flags = Vec::new();
    let mut rest = rest;
    while let Some(stripped) = rest.strip_prefix("--") {
        let (flag, after) = stripped
            .split_once(char::is_whitespace)
            .map(|(f, a)| (f, a.trim_start()))
            .unwrap_or((stripped, ""));
        let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
        let allowed = matches!(cmd, Cmd::Copy | Cmd::Add) && matches!(name, "chown" | "chmod");
        if !allowed {
            return Err(err(
                line,
                &format!("{} --{name} is not supported", cmd.name()),
            ));
        }
        if value.is_empty() {
            return Err(err(
                line,
                &format!("{} --{name} needs a value (--{name}=...)", cmd.name()),
            ));
        }
        flags.push((name.to_owned(), value.to_owned()));
        rest = after;
    }

    let args = match json_array(rest) {
        Some(v) => Args::Json(v),
        None => Args::Text(rest.to_owned()),
    };
    let inst = Instruction {
        line,
        cmd,
        flags,
        args,
        text,
    };
    validate(&inst).map_err(|m| err(line, &m))?;
    Ok(inst)
}

/// `["a", "b"]` → the strings; anything else (including invalid JSON) is shell/text form.
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// Per-instruction argument checks that need no build state.
fn validate(inst: &Instruction) -> Result<(), String> {
    let name = inst.cmd.name();
    let text = match &inst.args {
        Args::Text(t) => t.as_str(),
        Args::Json(v) if v.is_empty() && !matches!(inst.cmd, Cmd::Cmd | Cmd::Entrypoint) => {
            return Err(format!("{name} needs arguments"))
        }
        Args::Json(_) => return Ok(()),
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    match inst.cmd {
        Cmd::From => match words.as_slice() {
            [] => Err("FROM needs an image".into()),
            [_] => Ok(()),
            [_, kw, _] if kw.eq_ignore_ascii_case("as") => Err(
                "FROM ... AS is not supported (multi-stage builds); use a single FROM image".into(),
            ),
            _ => Err(format!("FROM takes one image, got {text:?}")),
        },
        Cmd::Copy | Cmd::Add if words.len() < 2 => {
            Err(format!("{name} needs at least a source and a destination"))
        }
        Cmd::Workdir | Cmd::User | Cmd::StopSignal | Cmd::Arg | Cmd::Expose if words.is_empty() => {
            Err(format!("{name} needs an argument"))
        }
        Cmd::Env | Cmd::Label | Cmd::Run if words.is_empty() => {
            Err(format!("{name} needs arguments"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Instruction {
        let df = parse(&format!("FROM scratch\n{text}")).unwrap();
        df.instructions[1].clone()
    }

    fn fails(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn instructions_keep_their_line_numbers() {
        let df = parse("# syntax=docker/dockerfile:1\nFROM busybox\n\n# a comment\nrun echo hi\nCMD [\"sh\"]\n").unwrap();
        let lines: Vec<(usize, Cmd)> = df.instructions.iter().map(|i| (i.line, i.cmd)).collect();
        assert_eq!(lines, [(2, Cmd::From), (5, Cmd::Run), (6, Cmd::Cmd)]);
        assert_eq!(df.instructions[1].text, "RUN echo hi");
        assert_eq!(df.instructions[2].args, Args::Json(vec!["sh".into()]));
    }

    #[test]
    fn continuations_join_and_skip_comments() {
        let df = parse("FROM x\nRUN echo a \\\n# inside\n\n  b \\\n  c\nENV A=1\n").unwrap();
        assert_eq!(df.instructions[1].args, Args::Text("echo a   b   c".into()));
        assert_eq!(df.instructions[2].line, 7);
    }

    #[test]
    fn escape_directive_changes_the_continuation_character() {
        let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n").unwrap();
        assert_eq!(
            df.instructions[1].args,
            Args::Text("dir c:\\   && echo".into())
        );
        assert!(fails("# escape=x\nFROM y").contains("invalid escape"));
    }

    #[test]
    fn json_and_shell_forms() {
        assert_eq!(
            one(r#"ENTRYPOINT ["/bin/app", "--flag"]"#).args,
            Args::Json(vec!["/bin/app".into(), "--flag".into()])
        );
        // Not valid JSON: shell form, like Docker.
        assert_eq!(one("CMD [not json").args, Args::Text("[not json".into()));
    }

    #[test]
    fn copy_flags_are_parsed_and_unsupported_ones_name_the_line() {
        let i = one("COPY --chown=10:20 --chmod=600 a b /dst/");
        assert_eq!(i.flag("chown"), Some("10:20"));
        assert_eq!(i.flag("chmod"), Some("600"));
        assert_eq!(i.args, Args::Text("a b /dst/".into()));
        assert_eq!(
            fails("FROM x\nRUN true\n\n\n\n\nCOPY --from=build /a /b\n"),
            "Dockerfile:7: COPY --from is not supported"
        );
        assert_eq!(
            fails("FROM x\nRUN --mount=type=cache,target=/c true"),
            "Dockerfile:2: RUN --mount is not supported"
        );
    }

    #[test]
    fn unsupported_and_unknown_instructions_fail_with_their_line() {
        assert_eq!(
            fails("FROM x\nHEALTHCHECK CMD true"),
            "Dockerfile:2: HEALTHCHECK is not supported"
        );
        for kw in ["ONBUILD RUN x", "VOLUME /data", "SHELL [\"bash\"]"] {
            assert!(fails(&format!("FROM x\n{kw}")).contains("is not supported"));
        }
        assert!(fails("FROM x\nFROBNICATE").contains("Dockerfile:2: unknown instruction"));
        assert!(fails("FROM x AS build\n").contains("Dockerfile:1: FROM ... AS is not supported"));
        assert!(fails("FROM x\nFROM y\n").contains("Dockerfile:2: multi-stage"));
        assert!(fails("RUN x\nFROM y").contains("Dockerfile:1: RUN before FROM"));
        assert!(fails("# only a comment\n").contains("no FROM"));
        assert!(fails("FROM x\nCOPY onlyone").contains("Dockerfile:2: COPY needs"));
    }

    #[test]
    fn arg_may_precede_from() {
        let df = parse("ARG BASE=busybox\nFROM $BASE\n").unwrap();
        assert_eq!(df.instructions[0].cmd, Cmd::Arg);
        assert_eq!(df.instructions[1].args, Args::Text("$BASE".into()));
    }
}
