//! The loader's error: every problem found, each naming where it is (a file and line, or a file,
//! a service and a key).

use std::fmt;

/// One problem with the Compose files: where (`compose.yaml:3:7`, or `compose.yaml: service
/// web: ports[0]`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// What `load` refuses: at least one problem, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeError {
    pub problems: Vec<Problem>,
}

impl ComposeError {
    pub fn one(at: impl Into<String>, message: impl Into<String>) -> Self {
        ComposeError {
            problems: vec![Problem {
                at: at.into(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ComposeError {}

/// Problems collected while converting (several services may each have several).
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            at: at.into(),
            message: message.into(),
        });
    }

    pub fn into_result<T>(self, value: T) -> Result<T, ComposeError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ComposeError { problems: self.0 })
        }
    }
}
