//! Running the kernel's command-line tools (`nft`, `ip`, `bridge`): one child process, its input
//! on stdin, its stdout as the answer and its stderr as the error. Blocking; callers run it on a
//! thread in the right network namespace.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `prog args`, feeding `stdin`; answers stdout, or stderr (trimmed; the exit status when it
/// printed nothing) as the error. The child is always reaped, also when writing its input failed
/// (it exited early: its own message says why).
pub fn run(prog: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String, String> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let written = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => pipe.write_all(input),
        _ => Ok(()),
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for {prog}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(if err.is_empty() {
            format!("{prog} {} exited with {}", args.join(" "), out.status)
        } else {
            err
        });
    }
    written.map_err(|e| format!("write to {prog}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
