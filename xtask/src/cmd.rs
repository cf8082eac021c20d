//! Running host programs: every command is echoed, and a failure names the
//! command and its exit status instead of a bare "exit code 2".

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Prints `$ program args...` the way a shell user would type it.
pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` with inherited output and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    println!("$ {}", describe(cmd));
    let status = cmd.status().with_context(|| format!("could not start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its standard output; stderr is kept for the error.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out =
        cmd.stdin(Stdio::null()).output().with_context(|| format!("could not start `{}`", describe(cmd)))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("`{}` failed ({}): {}", describe(cmd), out.status, stderr.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first line of `program --version` (or of the flag given), if it runs.
pub fn version_line(program: &str, flag: &str) -> Option<String> {
    let out = Command::new(program).arg(flag).stdin(Stdio::null()).output().ok()?;
    let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
    String::from_utf8_lossy(&text).lines().next().map(str::to_owned)
}
