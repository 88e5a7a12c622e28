//! Registry authentication: reading `WWW-Authenticate` challenges (parsed by `http-auth`) and
//! turning them into an `Authorization` header — Basic directly, Bearer through the token server
//! the challenge names (the distribution token protocol: `GET realm?service=&scope=`).

use std::collections::BTreeSet;

/// What a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// Scopes the challenge named (`repository:NAME:ACTIONS`).
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value; Bearer is preferred when several are offered.
pub fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let challenges = http_auth::parse_challenges(header)
        .map_err(|e| format!("cannot parse WWW-Authenticate {header:?}: {e}"))?;
    let param = |c: &http_auth::ChallengeRef<'_>, name: &str| {
        c.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_unescaped())
    };
    if let Some(c) = challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
    {
        let realm = param(c, "realm").ok_or("bearer challenge without realm")?;
        return Ok(Challenge::Bearer {
            realm,
            service: param(c, "service"),
            scope: param(c, "scope"),
        });
    }
    if challenges
        .iter()
        .any(|c| c.scheme.eq_ignore_ascii_case("basic"))
    {
        return Ok(Challenge::Basic);
    }
    Err(format!("unsupported authentication scheme in {header:?}"))
}

/// The token request's query: `service` and every scope (the challenge's and ours), sorted.
pub fn token_query(service: Option<&str>, scopes: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut q = Vec::new();
    if let Some(s) = service {
        q.push(("service".to_owned(), s.to_owned()));
    }
    for scope in scopes {
        q.push(("scope".to_owned(), scope.clone()));
    }
    q
}

/// The token from a token server's JSON answer (`token`, or OAuth2's `access_token`).
pub fn token_from_answer(body: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
    }
    let a: Answer =
        serde_json::from_slice(body).map_err(|e| format!("token server answer: {e}"))?;
    a.token
        .or(a.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "token server answered without a token".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert!(parse_challenge("Negotiate").is_err());
        assert!(parse_challenge("Bearer service=x").is_err());
    }

    #[test]
    fn reads_token_answers() {
        assert_eq!(token_from_answer(br#"{"token":"t1"}"#).unwrap(), "t1");
        assert_eq!(
            token_from_answer(br#"{"access_token":"t2","expires_in":60}"#).unwrap(),
            "t2"
        );
        assert!(token_from_answer(br#"{"token":""}"#).is_err());
        assert!(token_from_answer(b"<html>").is_err());
        let scopes: BTreeSet<String> = ["repository:a:pull".to_owned()].into();
        assert_eq!(
            token_query(Some("reg"), &scopes),
            vec![
                ("service".to_owned(), "reg".to_owned()),
                ("scope".to_owned(), "repository:a:pull".to_owned())
            ]
        );
    }
}
