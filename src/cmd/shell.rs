//! `rehearse completions SHELL` and `rehearse man [--dir DIR]`: shell completions and man pages
//! generated from the command-line definition itself, so they cannot drift from the flags.

use crate::cli::{CliError, Verdict};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `rehearse completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell, e.g. `rehearse completions bash > /etc/bash_completion.d/rehearse`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `rehearse man`.
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write `rehearse.1` and one page per subcommand (`rehearse-check.1`, …) into DIR
    /// instead of printing `rehearse.1` to stdout.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `shell` of the command line `cmd`.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> Result<Verdict, CliError> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "rehearse", &mut buf);
    write_stdout(&buf);
    Ok(Verdict::Ok)
}

/// Prints the man page of `cmd`, or writes every page into `--dir`.
pub fn man(args: ManArgs, cmd: clap::Command) -> Result<Verdict, CliError> {
    if let Some(dir) = &args.dir {
        let fail = |e: std::io::Error| CliError::new(format!("--dir {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(fail)?;
        clap_mangen::generate_to(cmd, dir).map_err(fail)?;
        return Ok(Verdict::Ok);
    }
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| CliError::new(format!("cannot render the man page: {e}")))?;
    write_stdout(&buf);
    Ok(Verdict::Ok)
}

/// Writes to stdout, ignoring a closed pipe (`rehearse man | head` is not an error).
fn write_stdout(bytes: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(bytes).and_then(|()| o.flush());
}
