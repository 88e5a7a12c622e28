//! The Dockerfile parser: text → stages of instructions with their line numbers. Pure.
//!
//! Why separate from the builder: what a Dockerfile *says* (lines, continuations, comments, parser
//! directives, heredocs, flags, JSON vs shell form, stages, which instructions exist) is checked
//! here once, before anything runs. Every problem found is reported in one error, each as
//! `Dockerfile:LINE: message`, so a file that uses three unsupported things says so at once.
//! Variable substitution needs the build's state (ENV so far, ARG values) and happens later, in
//! `vars`.

use std::fmt;

use super::run_mount;

/// The largest Dockerfile accepted (BuildKit has no limit; the biggest real ones are ~100 KiB).
pub const MAX_DOCKERFILE_BYTES: usize = 1 << 20;

/// A problem on one line: `Dockerfile:7: COPY --from needs a value`.
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

/// Every problem of a Dockerfile, in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseErrors(pub Vec<ParseError>);

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() > 1 {
            writeln!(f, "the Dockerfile has {} problems:", self.0.len())?;
        }
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ParseErrors {}

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
    Volume,
    Healthcheck,
    Shell,
    Onbuild,
    Maintainer,
}

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    /// `--name=value`, once.
    Value,
    /// `--name=value`, any number of times.
    Repeated,
    /// `--name` or `--name=true|false`.
    Bool,
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
            Cmd::Volume => "VOLUME",
            Cmd::Healthcheck => "HEALTHCHECK",
            Cmd::Shell => "SHELL",
            Cmd::Onbuild => "ONBUILD",
            Cmd::Maintainer => "MAINTAINER",
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
            "VOLUME" => Cmd::Volume,
            "HEALTHCHECK" => Cmd::Healthcheck,
            "SHELL" => Cmd::Shell,
            "ONBUILD" => Cmd::Onbuild,
            "MAINTAINER" => Cmd::Maintainer,
            _ => return Err(format!("unknown instruction {word:?}")),
        })
    }

    /// The flags an instruction takes.
    fn flags(self) -> &'static [(&'static str, FlagKind)] {
        use FlagKind::*;
        match self {
            Cmd::From => &[("platform", Value)],
            Cmd::Run => &[("mount", Repeated), ("network", Value), ("security", Value)],
            Cmd::Copy => &[
                ("from", Value),
                ("chown", Value),
                ("chmod", Value),
                ("link", Bool),
                ("parents", Bool),
                ("exclude", Repeated),
            ],
            Cmd::Add => &[
                ("chown", Value),
                ("chmod", Value),
                ("link", Bool),
                ("checksum", Value),
                ("exclude", Repeated),
                ("keep-git-dir", Bool),
            ],
            Cmd::Healthcheck => &[
                ("interval", Value),
                ("timeout", Value),
                ("start-period", Value),
                ("start-interval", Value),
                ("retries", Value),
            ],
            _ => &[],
        }
    }

    /// Instructions whose arguments may hold heredocs (`<<EOF`).
    fn takes_heredocs(self) -> bool {
        matches!(self, Cmd::Run | Cmd::Copy | Cmd::Add)
    }
}

/// An instruction's arguments: the JSON (exec) form or the text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    Json(Vec<String>),
    Text(String),
}

/// A heredoc of RUN, COPY or ADD: `<<EOF` ... `EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (also the file name of a COPY heredoc).
    pub name: String,
    /// The lines between the marker and the delimiter, each ending in `\n` (with `<<-`, leading
    /// tabs removed).
    pub body: String,
    /// An unquoted delimiter: variables in the body are expanded.
    pub expand: bool,
}

/// One instruction of the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The line it starts on (1-based).
    pub line: usize,
    pub cmd: Cmd,
    /// `--name=value` flags, in order (a repeated flag appears once per use).
    pub flags: Vec<(String, String)>,
    pub args: Args,
    /// The instruction as written, continuations joined (for step output and history).
    pub text: String,
    /// Heredocs, in the order their markers appear.
    pub heredocs: Vec<Heredoc>,
}

impl Instruction {
    /// The value of a flag given once (the last, if repeated).
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable flag.
    pub fn flag_all(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean flag (`--link`, `--link=true`).
    pub fn flag_set(&self, name: &str) -> bool {
        self.flag(name).is_some_and(|v| v != "false")
    }
}

/// One stage: a FROM and what follows it up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position in the file (0-based): what `--from=N` names.
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// The FROM instruction.
    pub from: Instruction,
    /// The base as written (before variable substitution): an image, a stage name, `scratch`.
    pub base: String,
    pub instructions: Vec<Instruction>,
}

/// A parsed Dockerfile: global ARGs, then stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// ARGs before the first FROM (usable in FROM lines and redeclared inside stages).
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    /// The escape character (`\` unless a `# escape=` directive says otherwise).
    pub escape: char,
}

impl Dockerfile {
    /// The stage `name` (a stage name or an index) refers to, if any.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

/// Parses a whole Dockerfile, collecting every problem.
pub fn parse(text: &str) -> Result<Dockerfile, ParseErrors> {
    if text.len() > MAX_DOCKERFILE_BYTES {
        return Err(ParseErrors(vec![err(
            1,
            &format!(
                "the Dockerfile is {} bytes; at most {} are accepted",
                text.len(),
                MAX_DOCKERFILE_BYTES
            ),
        )]));
    }
    let mut errors = Vec::new();
    let mut escape = '\\';
    let all: Vec<&str> = text.lines().collect();
    let mut i = 0;
    // Parser directives: `# key=value` lines at the very top, before any blank line or comment.
    while let Some(line) = all.get(i) {
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
            match value.trim() {
                "\\" => escape = '\\',
                "`" => escape = '`',
                other => errors.push(err(
                    i + 1,
                    &format!("invalid escape directive {other:?}: use \\ or `"),
                )),
            }
        }
        // `syntax` and unknown directives select frontends we do not have: ignored.
        i += 1;
    }

    let mut instructions = Vec::new();
    while i < all.len() {
        let trimmed = all[i].trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut logical = String::new();
        let mut current = all[i].to_owned();
        i += 1;
        loop {
            let t = current.trim_end();
            match t.strip_suffix(escape) {
                Some(head) => {
                    logical.push_str(head);
                    // Comment and blank lines inside a continuation are dropped, like Docker.
                    let mut next = None;
                    while i < all.len() {
                        let l = all[i];
                        i += 1;
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
        // Heredoc bodies belong to their instruction even when it has a problem: read them
        // first, so their lines are never taken for instructions.
        let logical = logical.trim();
        let keyword = logical.split_whitespace().next().unwrap_or_default();
        let mut heredocs = Vec::new();
        let rest = &logical[keyword.len()..];
        // (The exec form, a JSON array after the flags, has no heredocs.)
        let json_form = rest
            .split_whitespace()
            .find(|w| !w.starts_with("--"))
            .is_some_and(|w| w.starts_with('['));
        if Cmd::parse(keyword).is_ok_and(Cmd::takes_heredocs) && !json_form {
            for (name, strip_tabs, expand) in heredoc_markers(rest) {
                match read_heredoc(&all, &mut i, &name, strip_tabs) {
                    Some(body) => heredocs.push(Heredoc { name, body, expand }),
                    None => errors.push(err(
                        start,
                        &format!("heredoc <<{name} has no terminating {name} line"),
                    )),
                }
            }
        }
        match parse_instruction(start, logical) {
            Ok(mut inst) => {
                inst.heredocs = heredocs;
                instructions.push(inst)
            }
            Err(mut e) => errors.append(&mut e),
        }
    }

    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for inst in instructions {
        if inst.cmd == Cmd::From {
            let (base, name) = from_parts(&inst);
            if let Some(n) = &name {
                if let Some(prev) = stages.iter().find(|s| s.name.as_deref() == Some(n)) {
                    errors.push(err(
                        inst.line,
                        &format!(
                            "stage name {n:?} is already used by the stage at line {}",
                            prev.from.line
                        ),
                    ));
                }
            }
            stages.push(Stage {
                index: stages.len(),
                name,
                from: inst,
                base,
                instructions: Vec::new(),
            });
            continue;
        }
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(inst),
            None if inst.cmd == Cmd::Arg => meta_args.push(inst),
            None => errors.push(err(
                inst.line,
                &format!(
                    "{} before FROM: a Dockerfile must start with FROM (only ARG may come first)",
                    inst.cmd.name()
                ),
            )),
        }
    }
    if stages.is_empty() && errors.is_empty() {
        errors.push(err(all.len().max(1), "no FROM instruction"));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(ParseErrors(errors));
    }
    Ok(Dockerfile {
        meta_args,
        stages,
        escape,
    })
}

fn err(line: usize, message: &str) -> ParseError {
    ParseError {
        line,
        message: message.to_owned(),
    }
}

/// `FROM image [AS name]` → (image as written, lowercased name).
fn from_parts(inst: &Instruction) -> (String, Option<String>) {
    let Args::Text(t) = &inst.args else {
        return (String::new(), None);
    };
    let words: Vec<&str> = t.split_whitespace().collect();
    match words.as_slice() {
        [image, _, name] => ((*image).to_owned(), Some(name.to_ascii_lowercase())),
        [image, ..] => ((*image).to_owned(), None),
        [] => (String::new(), None),
    }
}

/// The heredoc markers of an instruction's text: `(name, <<- strips tabs, body is expanded)`.
fn heredoc_markers(text: &str) -> Vec<(String, bool, bool)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] != b'<' || b[i + 1] != b'<' || (i > 0 && b[i - 1] == b'<') {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        let strip = b.get(j) == Some(&b'-');
        if strip {
            j += 1;
        }
        let quote = match b.get(j) {
            Some(&q @ (b'"' | b'\'')) => {
                j += 1;
                Some(q)
            }
            _ => None,
        };
        let word_start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        let word = &text[word_start..j];
        let closed = match quote {
            Some(q) if b.get(j) == Some(&q) => {
                j += 1;
                true
            }
            Some(_) => false,
            None => true,
        };
        if !word.is_empty() && closed {
            out.push((word.to_owned(), strip, quote.is_none()));
        }
        i = j.max(i + 2);
    }
    out
}

/// Consumes the lines of a heredoc body up to its delimiter: `None` when the file ends first.
fn read_heredoc(all: &[&str], i: &mut usize, name: &str, strip_tabs: bool) -> Option<String> {
    let mut body = String::new();
    while *i < all.len() {
        let line = all[*i];
        *i += 1;
        let line = if strip_tabs {
            line.trim_start_matches('\t')
        } else {
            line
        };
        if line == name {
            return Some(body);
        }
        body.push_str(line);
        body.push('\n');
    }
    None
}

fn parse_instruction(line: usize, logical: &str) -> Result<Instruction, Vec<ParseError>> {
    let (word, rest) = logical
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim_start()))
        .unwrap_or((logical, ""));
    let cmd = Cmd::parse(word).map_err(|m| vec![err(line, &m)])?;
    let text = format!("{} {}", cmd.name(), rest).trim_end().to_owned();
    let mut errors = Vec::new();

    // Flags: leading `--name[=value]` words.
    let mut flags = Vec::new();
    let mut rest = rest;
    while let Some(stripped) = rest.strip_prefix("--") {
        let (flag, after) = stripped
            .split_once(char::is_whitespace)
            .map(|(f, a)| (f, a.trim_start()))
            .unwrap_or((stripped, ""));
        rest = after;
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (flag, None),
        };
        let Some(&(_, kind)) = cmd.flags().iter().find(|(n, _)| *n == name) else {
            errors.push(err(
                line,
                &format!("{} --{name} is not supported", cmd.name()),
            ));
            continue;
        };
        let value = match (kind, value) {
            (FlagKind::Bool, None) => "true".to_owned(),
            (FlagKind::Bool, Some(v @ ("true" | "false"))) => v.to_owned(),
            (FlagKind::Bool, Some(v)) => {
                errors.push(err(
                    line,
                    &format!("{} --{name}={v}: use true or false", cmd.name()),
                ));
                continue;
            }
            (_, Some(v)) if !v.is_empty() => v.to_owned(),
            _ => {
                errors.push(err(
                    line,
                    &format!("{} --{name} needs a value (--{name}=...)", cmd.name()),
                ));
                continue;
            }
        };
        if kind != FlagKind::Repeated && flags.iter().any(|(n, _): &(String, String)| n == name) {
            errors.push(err(
                line,
                &format!("{} --{name} is given twice", cmd.name()),
            ));
            continue;
        }
        flags.push((name.to_owned(), value));
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
        heredocs: Vec::new(),
    };
    for m in validate(&inst) {
        errors.push(err(line, &m));
    }
    if errors.is_empty() {
        Ok(inst)
    } else {
        Err(errors)
    }
}

/// `["a", "b"]` → the strings; anything else (including invalid JSON) is shell/text form.
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// Per-instruction checks that need no build state: every problem found.
fn validate(inst: &Instruction) -> Vec<String> {
    let name = inst.cmd.name();
    let mut problems = Vec::new();
    // Flag values that can be checked now.
    for spec in inst.flag_all("mount") {
        if let Err(e) = run_mount::parse(spec) {
            problems.push(e);
        }
    }
    match inst.flag("network") {
        None | Some("default" | "none") => {}
        Some("host") => problems.push(
            "RUN --network=host is not supported (steps run with none or the build's network)"
                .into(),
        ),
        Some(other) => problems.push(format!("RUN --network={other}: use default or none")),
    }
    if let Some(s) = inst.flag("security") {
        problems.push(format!("RUN --security={s} is not supported"));
    }
    if inst.flag_set("keep-git-dir") {
        problems.push("ADD --keep-git-dir is not supported (ADD of git repositories)".into());
    }
    if let Some(c) = inst.flag("checksum") {
        let ok = c
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            problems.push(format!("ADD --checksum={c}: use sha256:<64 hex digits>"));
        }
    }
    for d in ["interval", "timeout", "start-period", "start-interval"] {
        if let Some(v) = inst.flag(d) {
            if hoist_proto::quantity::parse_duration_ms(v).is_none() {
                problems.push(format!("HEALTHCHECK --{d}={v}: not a duration (e.g. 30s)"));
            }
        }
    }
    if let Some(r) = inst.flag("retries") {
        if r.parse::<u32>().is_err() {
            problems.push(format!("HEALTHCHECK --retries={r}: not a number"));
        }
    }

    let text = match &inst.args {
        Args::Text(t) => t.as_str(),
        Args::Json(v)
            if v.is_empty() && !matches!(inst.cmd, Cmd::Cmd | Cmd::Entrypoint | Cmd::Shell) =>
        {
            problems.push(format!("{name} needs arguments"));
            return problems;
        }
        Args::Json(v) if inst.cmd == Cmd::Shell && v.is_empty() => {
            problems.push("SHELL needs at least the shell's path".into());
            return problems;
        }
        Args::Json(_) => return problems,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    match inst.cmd {
        Cmd::From => match words.as_slice() {
            [] => problems.push("FROM needs an image".into()),
            [_] => {}
            [_, kw, n] if kw.eq_ignore_ascii_case("as") => {
                let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !ok {
                    problems.push(format!(
                        "invalid stage name {n:?}: letters, digits, '_', '-' and '.', starting with a letter"
                    ));
                }
            }
            _ => problems.push(format!("FROM takes IMAGE [AS NAME], got {text:?}")),
        },
        Cmd::Copy | Cmd::Add if words.len() < 2 => {
            problems.push(format!("{name} needs at least a source and a destination"))
        }
        Cmd::Workdir
        | Cmd::User
        | Cmd::StopSignal
        | Cmd::Arg
        | Cmd::Expose
        | Cmd::Volume
        | Cmd::Maintainer
            if words.is_empty() =>
        {
            problems.push(format!("{name} needs an argument"))
        }
        Cmd::Env | Cmd::Label | Cmd::Run if words.is_empty() => {
            problems.push(format!("{name} needs arguments"))
        }
        Cmd::Shell => {
            problems.push("SHELL takes a JSON array: SHELL [\"/bin/bash\", \"-c\"]".into())
        }
        Cmd::Healthcheck => match words.first().map(|w| w.to_ascii_uppercase()).as_deref() {
            Some("NONE") if words.len() == 1 && inst.flags.is_empty() => {}
            Some("NONE") => problems.push("HEALTHCHECK NONE takes no flags or arguments".into()),
            Some("CMD") if words.len() > 1 => {}
            _ => problems.push("HEALTHCHECK takes [OPTIONS] CMD command, or NONE".into()),
        },
        Cmd::Onbuild => {
            let inner = text.trim();
            let word = inner.split_whitespace().next().unwrap_or_default();
            match Cmd::parse(word) {
                Ok(Cmd::Onbuild | Cmd::From | Cmd::Maintainer) => problems.push(format!(
                    "ONBUILD {} is not allowed",
                    word.to_ascii_uppercase()
                )),
                Ok(_) => {
                    if let Err(errors) = parse_instruction(inst.line, inner) {
                        problems.extend(
                            errors
                                .into_iter()
                                .map(|e| format!("ONBUILD: {}", e.message)),
                        );
                    }
                }
                Err(e) => problems.push(format!("ONBUILD: {e}")),
            }
        }
        _ => {}
    }
    problems
}

/// Parses one instruction on its own (an ONBUILD trigger, a `commit --change`).
pub fn parse_one(line: usize, text: &str) -> Result<Instruction, ParseErrors> {
    parse_instruction(line, text.trim()).map_err(ParseErrors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(df: &Dockerfile) -> Vec<&Instruction> {
        df.stages
            .iter()
            .flat_map(|s| std::iter::once(&s.from).chain(s.instructions.iter()))
            .collect()
    }

    fn one(text: &str) -> Instruction {
        let df = parse(&format!("FROM scratch\n{text}")).unwrap();
        df.stages[0].instructions[0].clone()
    }

    fn fails(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn instructions_keep_their_line_numbers() {
        let df = parse("# syntax=docker/dockerfile:1\nFROM busybox\n\n# a comment\nrun echo hi\nCMD [\"sh\"]\n").unwrap();
        let lines: Vec<(usize, Cmd)> = all(&df).iter().map(|i| (i.line, i.cmd)).collect();
        assert_eq!(lines, [(2, Cmd::From), (5, Cmd::Run), (6, Cmd::Cmd)]);
        assert_eq!(all(&df)[1].text, "RUN echo hi");
        assert_eq!(all(&df)[2].args, Args::Json(vec!["sh".into()]));
    }

    #[test]
    fn continuations_join_and_skip_comments() {
        let df = parse("FROM x\nRUN echo a \\\n# inside\n\n  b \\\n  c\nENV A=1\n").unwrap();
        assert_eq!(all(&df)[1].args, Args::Text("echo a   b   c".into()));
        assert_eq!(all(&df)[2].line, 7);
    }

    #[test]
    fn escape_directive_changes_the_continuation_character() {
        let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n").unwrap();
        assert_eq!(all(&df)[1].args, Args::Text("dir c:\\   && echo".into()));
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
    fn flags_are_parsed_and_bad_ones_name_the_line() {
        let i = one("COPY --chown=10:20 --chmod=600 --link --exclude=*.md --exclude=x a b /dst/");
        assert_eq!(i.flag("chown"), Some("10:20"));
        assert_eq!(i.flag("chmod"), Some("600"));
        assert!(i.flag_set("link"));
        assert!(!i.flag_set("parents"));
        assert_eq!(i.flag_all("exclude"), ["*.md", "x"]);
        assert_eq!(i.args, Args::Text("a b /dst/".into()));
        let r = one("RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t true");
        assert_eq!(r.flag_all("mount").len(), 2);
        assert_eq!(
            fails("FROM x\nRUN true\n\n\n\n\nCOPY --frm=build /a /b\n"),
            "Dockerfile:7: COPY --frm is not supported"
        );
        assert_eq!(
            fails("FROM x\nRUN --mount=type=ssh true"),
            "Dockerfile:2: --mount type=ssh is not supported"
        );
        assert!(fails("FROM x\nCOPY --from /a /b").contains("--from needs a value"));
        assert!(fails("FROM x\nADD --checksum=md5:1 a /b").contains("sha256"));
        assert!(fails("FROM x\nRUN --network=host true").contains("host is not supported"));
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let e =
            fails("FROM x\nFROBNICATE\nRUN --security=insecure true\nCOPY onlyone\nHEALTHCHECK\n");
        assert!(e.starts_with("the Dockerfile has 4 problems:"), "{e}");
        for l in [
            "Dockerfile:2: unknown instruction",
            "Dockerfile:3: RUN --security",
            "Dockerfile:4: COPY needs",
            "Dockerfile:5: HEALTHCHECK takes",
        ] {
            assert!(e.contains(l), "{l} missing in {e}");
        }
    }

    #[test]
    fn stages_are_split_named_and_checked() {
        let df = parse("ARG V=1\nFROM golang AS Build\nRUN make\nFROM build AS test\nFROM --platform=$BUILDPLATFORM scratch\nCOPY --from=build /app /app\n").unwrap();
        assert_eq!(df.meta_args.len(), 1);
        let names: Vec<Option<&str>> = df.stages.iter().map(|s| s.name.as_deref()).collect();
        assert_eq!(names, [Some("build"), Some("test"), None]);
        assert_eq!(df.stages[1].base, "build");
        assert_eq!(df.stages[2].from.flag("platform"), Some("$BUILDPLATFORM"));
        assert_eq!(df.stage("BUILD").unwrap().index, 0);
        assert_eq!(df.stage("2").unwrap().index, 2);
        assert!(df.stage("7").is_none());
        assert!(fails("FROM a AS x\nFROM b AS x\n")
            .contains("Dockerfile:2: stage name \"x\" is already used"));
        assert!(fails("FROM a AS 1x\n").contains("invalid stage name"));
        assert!(fails("RUN x\nFROM y").contains("Dockerfile:1: RUN before FROM"));
        assert!(fails("# only a comment\n").contains("no FROM"));
    }

    #[test]
    fn new_instructions_parse() {
        assert_eq!(one("VOLUME /data /logs").cmd, Cmd::Volume);
        assert_eq!(one(r#"SHELL ["/bin/bash", "-c"]"#).cmd, Cmd::Shell);
        assert!(fails("FROM x\nSHELL /bin/bash").contains("JSON array"));
        let h = one("HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost");
        assert_eq!(h.flag("interval"), Some("5s"));
        assert_eq!(one("HEALTHCHECK NONE").args, Args::Text("NONE".into()));
        assert!(fails("FROM x\nHEALTHCHECK --interval=soon CMD true").contains("not a duration"));
        assert_eq!(one("ONBUILD COPY . /app").cmd, Cmd::Onbuild);
        assert!(fails("FROM x\nONBUILD ONBUILD RUN x").contains("ONBUILD ONBUILD is not allowed"));
        assert!(fails("FROM x\nONBUILD COPY --bogus a b").contains("ONBUILD: COPY --bogus"));
        assert_eq!(one("MAINTAINER me <me@example.com>").cmd, Cmd::Maintainer);
    }

    #[test]
    fn heredocs_are_read_with_their_delimiters() {
        let df = parse("FROM x\nRUN <<EOF\necho a\necho b\nEOF\nCOPY <<-\"A\" <<B /dst/\n\tone $X\n\tA\ntwo\nB\nCMD [\"x\"]\n").unwrap();
        let insts = all(&df);
        assert_eq!(
            insts[1].heredocs,
            [Heredoc {
                name: "EOF".into(),
                body: "echo a\necho b\n".into(),
                expand: true
            }]
        );
        assert_eq!(
            insts[2].heredocs[0],
            Heredoc {
                name: "A".into(),
                body: "one $X\n".into(),
                expand: false
            }
        );
        assert_eq!(insts[2].heredocs[1].body, "two\n");
        assert_eq!((insts[3].line, insts[3].cmd), (11, Cmd::Cmd));
        assert_eq!(
            fails("FROM x\nRUN <<EOF\necho never ends\n"),
            "Dockerfile:2: heredoc <<EOF has no terminating EOF line"
        );
        // A problem in the instruction does not make its heredoc's lines instructions.
        assert_eq!(
            fails("FROM x\nRUN --bogus <<EOF\nset -e\nEOF\n"),
            "Dockerfile:2: RUN --bogus is not supported"
        );
        // Not heredocs: a here-string, and markers in other instructions.
        assert!(one("RUN cat <<<word").heredocs.is_empty());
        assert!(one("ENV A=<<EOF").heredocs.is_empty());
        let df = parse("FROM x\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nCMD [\"y\"]\n").unwrap();
        assert_eq!(all(&df).len(), 3, "an exec form's << is not a heredoc");
    }

    #[test]
    fn oversized_files_are_refused_before_parsing() {
        let big = format!("FROM x\n{}", "RUN true\n".repeat(MAX_DOCKERFILE_BYTES / 8));
        assert!(fails(&big).contains("at most"));
    }

    #[test]
    fn arg_may_precede_from() {
        let df = parse("ARG BASE=busybox\nFROM $BASE\n").unwrap();
        assert_eq!(df.meta_args[0].cmd, Cmd::Arg);
        assert_eq!(df.stages[0].base, "$BASE");
    }
}
