//! Dockerfile word processing: quotes, escapes and variable substitution (`$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR:+alt}`, `${VAR-default}`, `${VAR+alt}`). Pure.
//!
//! Why its own module: Docker applies the same small shell-like lexer to ENV, LABEL, ARG, COPY,
//! WORKDIR, USER, EXPOSE, STOPSIGNAL and FROM, and cache keys are computed over its output; one
//! implementation keeps them consistent. RUN, CMD and ENTRYPOINT are left to the shell.

/// Looks a variable up (ENV of the build so far, then ARGs in scope).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Processes `s` as one word: quotes removed, escapes applied, variables substituted; whitespace
/// is kept (`WORKDIR /my dir`).
pub fn process_word(s: &str, vars: Lookup<'_>, escape: char) -> Result<String, String> {
    let mut lexer = Lexer::new(s, vars, escape, false);
    let words = lexer.run()?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Splits `s` on unquoted whitespace, then processes each word like [`process_word`].
pub fn process_words(s: &str, vars: Lookup<'_>, escape: char) -> Result<Vec<String>, String> {
    Lexer::new(s, vars, escape, true).run()
}

/// Substitutes variables in free text (a heredoc's body) and nothing else: quotes and
/// whitespace are kept; an escaped `$` stays a literal `$`.
pub fn expand_text(s: &str, vars: Lookup<'_>, escape: char) -> Result<String, String> {
    let mut lexer = Lexer::new(s, vars, escape, false);
    let mut out = String::new();
    while let Some(c) = lexer.peek() {
        lexer.pos += 1;
        match c {
            '$' => out.push_str(&lexer.dollar()?),
            c if c == escape && lexer.peek() == Some('$') => {
                out.push('$');
                lexer.pos += 1;
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    vars: Lookup<'a>,
    escape: char,
    split: bool,
}

impl<'a> Lexer<'a> {
    fn new(s: &str, vars: Lookup<'a>, escape: char, split: bool) -> Self {
        Self {
            chars: s.chars().collect(),
            pos: 0,
            vars,
            escape,
            split,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn run(&mut self) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if self.split && c.is_whitespace() {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                continue;
            }
            in_word = true;
            match c {
                '\'' => loop {
                    match self.peek() {
                        None => return Err("unterminated single quote".into()),
                        Some('\'') => {
                            self.pos += 1;
                            break;
                        }
                        Some(ch) => {
                            word.push(ch);
                            self.pos += 1;
                        }
                    }
                },
                '"' => loop {
                    match self.peek() {
                        None => return Err("unterminated double quote".into()),
                        Some('"') => {
                            self.pos += 1;
                            break;
                        }
                        Some(ch) if ch == self.escape => {
                            self.pos += 1;
                            match self.peek() {
                                Some(n @ ('"' | '$')) => {
                                    word.push(n);
                                    self.pos += 1;
                                }
                                Some(n) if n == self.escape => {
                                    word.push(n);
                                    self.pos += 1;
                                }
                                _ => word.push(ch),
                            }
                        }
                        Some('$') => {
                            self.pos += 1;
                            let v = self.dollar()?;
                            word.push_str(&v);
                        }
                        Some(ch) => {
                            word.push(ch);
                            self.pos += 1;
                        }
                    }
                },
                '$' => {
                    let v = self.dollar()?;
                    word.push_str(&v);
                }
                ch if ch == self.escape => match self.peek() {
                    Some(n) => {
                        word.push(n);
                        self.pos += 1;
                    }
                    None => word.push(ch),
                },
                ch => word.push(ch),
            }
        }
        if in_word || !self.split {
            words.push(word);
        }
        Ok(words)
    }

    /// After a `$`: a `${...}` expression, a `$NAME`, or a literal `$`.
    fn dollar(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err("bad substitution: ${} needs a variable name".into());
                }
                let value = (self.vars)(&name);
                match self.peek() {
                    Some('}') => {
                        self.pos += 1;
                        Ok(value.unwrap_or_default())
                    }
                    Some(':') | Some('-') | Some('+') => {
                        let colon = self.peek() == Some(':');
                        if colon {
                            self.pos += 1;
                        }
                        let op = self.peek().ok_or("unterminated ${")?;
                        if op != '-' && op != '+' {
                            return Err(format!(
                                "bad substitution: unsupported modifier {op:?} in ${{{name}...}}"
                            ));
                        }
                        self.pos += 1;
                        let word = self.until_brace()?;
                        let set = match &value {
                            Some(v) => !(colon && v.is_empty()),
                            None => false,
                        };
                        Ok(match (op, set) {
                            ('-', true) => value.unwrap_or_default(),
                            ('-', false) => word,
                            ('+', true) => word,
                            _ => String::new(),
                        })
                    }
                    _ => Err(format!("bad substitution: missing }} after ${{{name}")),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                Ok((self.vars)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// The word of `${VAR:-word}` up to its closing brace, itself processed (nested `$`).
    fn until_brace(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated ${".into()),
                Some('}') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => {
                    self.pos += 1;
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) if c == self.escape => {
                    self.pos += 1;
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.pos += 1;
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

/// Splits `KEY=VALUE` pairs of ENV/LABEL (after word processing). The legacy form `ENV KEY VALUE`
/// (first word without `=`) takes the rest of the line as the value.
pub fn key_values(
    raw: &str,
    vars: Lookup<'_>,
    escape: char,
) -> Result<Vec<(String, String)>, String> {
    let words = process_words(raw, vars, escape)?;
    let Some(first) = words.first() else {
        return Err("needs KEY=VALUE".into());
    };
    if !first.contains('=') {
        // Legacy form: the key is the first word, the value the rest of the raw line.
        let rest = raw
            .trim_start()
            .split_once(char::is_whitespace)
            .map(|(_, r)| r.trim())
            .unwrap_or("");
        if rest.is_empty() {
            return Err(format!("{first} needs a value"));
        }
        return Ok(vec![(first.clone(), process_word(rest, vars, escape)?)]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_expansion_keeps_quotes_and_spaces() {
        let vars = |n: &str| (n == "WHO").then(|| "world".to_owned());
        assert_eq!(
            expand_text("echo \"hi ${WHO}\"  '$WHO' \\$WHO\n", &vars, '\\').unwrap(),
            "echo \"hi world\"  'world' $WHO\n"
        );
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            "V" => Some("1.2".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> String {
        process_word(s, &env, '\\').unwrap()
    }

    #[test]
    fn substitutes_plain_braced_and_defaults() {
        assert_eq!(w("$HOME/x"), "/root/x");
        assert_eq!(w("${HOME}x"), "/rootx");
        assert_eq!(w("${NOPE:-dflt}"), "dflt");
        assert_eq!(w("${EMPTY:-dflt}"), "dflt");
        assert_eq!(w("${EMPTY-dflt}"), "");
        assert_eq!(w("${HOME:-dflt}"), "/root");
        assert_eq!(w("${HOME:+alt}"), "alt");
        assert_eq!(w("${NOPE:+alt}"), "");
        assert_eq!(w("${NOPE:-$HOME/v$V}"), "/root/v1.2");
        assert_eq!(w("$NOPE"), "");
        assert_eq!(w("cost: $5"), "cost: $5");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$HOME'"), "$HOME");
        assert_eq!(w("\"$HOME dir\""), "/root dir");
        assert_eq!(w("\\$HOME"), "$HOME");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert!(process_word("'open", &env, '\\').is_err());
        assert!(process_word("${HOME", &env, '\\').is_err());
        assert!(process_word("${HOME:?x}", &env, '\\').is_err());
    }

    #[test]
    fn words_split_on_unquoted_whitespace() {
        let words = process_words("a \"b c\" 'd  e'  $V \"\"", &env, '\\').unwrap();
        assert_eq!(words, ["a", "b c", "d  e", "1.2", ""]);
    }

    #[test]
    fn env_and_label_pairs_new_and_legacy_forms() {
        assert_eq!(
            key_values("A=1 B=\"two words\" C=$V", &env, '\\').unwrap(),
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "1.2".into())
            ]
        );
        assert_eq!(
            key_values("GREETING hello   world $V", &env, '\\').unwrap(),
            [("GREETING".into(), "hello   world 1.2".into())]
        );
        assert!(key_values("=x", &env, '\\').is_err());
    }

    proptest::proptest! {
        /// Any input either processes or errors; never panics. Words without quotes, escapes or
        /// `$` come back unchanged.
        #[test]
        fn never_panics_and_plain_words_pass_through(
            input in "\\PC{0,40}",
            plain in proptest::collection::vec("[a-zA-Z0-9_./:=-]{1,8}", 0..5),
        ) {
            let _ = process_words(&input, &env, '\\');
            let _ = process_word(&input, &env, '`');
            let _ = key_values(&input, &env, '\\');
            let words = process_words(&plain.join(" "), &env, '\\').unwrap();
            proptest::prop_assert_eq!(words, plain);
        }
    }
}
