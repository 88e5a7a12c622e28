//! A tiny bearer-token server for registry tests (the distribution token protocol): `GET
//! /token?service=S&scope=repository:NAME:ACTIONS...` with Basic credentials answers
//! `{"token": JWT}`, an ES256 JWT whose `x5c` header carries the signing certificate the registry
//! trusts (`auth: token: rootcertbundle`). Wrong or missing credentials get 401.
//!
//!   hoist-token-server LISTEN_ADDR KEY_PKCS8_DER CERT_DER ISSUER USER:PASSWORD

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 6,
        "usage: hoist-token-server ADDR KEY_DER CERT_DER ISSUER USER:PASS"
    );
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &std::fs::read(&args[2])?,
        &rng,
    )
    .map_err(|e| anyhow::anyhow!("key: {e}"))?;
    let cert = STANDARD.encode(std::fs::read(&args[3])?);
    let issuer = args[4].clone();
    let expected = format!("Basic {}", STANDARD.encode(&args[5]));
    let user = args[5].split(':').next().unwrap_or("").to_owned();
    let listener = TcpListener::bind(&args[1])?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") {
                    authorization = Some(v.trim().to_owned());
                }
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/");
        let query = target.split_once('?').map(|x| x.1).unwrap_or("");
        let mut service = String::new();
        let mut access = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "service" => service = v,
                "scope" => {
                    for scope in v.split(' ') {
                        let parts: Vec<&str> = scope.split(':').collect();
                        if parts.len() >= 3 {
                            let actions = parts[parts.len() - 1];
                            let name = parts[1..parts.len() - 1].join(":");
                            access.push(serde_json::json!({
                                "type": parts[0],
                                "name": name,
                                "actions": actions.split(',').collect::<Vec<_>>(),
                            }));
                        }
                    }
                }
                _ => {}
            }
        }
        if authorization.as_deref() != Some(expected.as_str()) {
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
            write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            continue;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [cert]});
        let claims = serde_json::json!({
            "iss": issuer, "sub": user, "aud": service,
            "exp": now + 600, "nbf": now - 60, "iat": now,
            "jti": format!("{now}-{}", std::process::id()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = key
            .sign(&rng, signing_input.as_bytes())
            .map_err(|e| anyhow::anyhow!("sign: {e}"))?;
        let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
        let body = serde_json::json!({"token": token, "expires_in": 600}).to_string();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
    }
    Ok(())
}
