//! `ikelb generate` (hidden): the man pages and shell completions, rendered from
//! [`Cli`] itself, so what the package documents is the command line the binary parses
//! (`cargo xtask deb` runs it on the freshly built binary).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};

use super::Cli;

/// Man pages and completions for the package.
#[derive(Parser)]
#[command(name = "generate", hide = true)]
pub struct Generate {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// ikelb.8 and one ikelb-<command>.8 per command.
    Man {
        /// Directory to write them into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// The completion script of a shell (ikelb.bash, _ikelb, ikelb.fish, ...).
    Completions {
        shell: clap_complete::Shell,
        /// Directory to write it into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

impl Generate {
    /// Writes the files and prints their paths, one a line.
    pub fn run(self) -> Result<()> {
        let (out, files) = match self.what {
            What::Man { out } => {
                let files = std::fs::create_dir_all(&out).and_then(|()| man_pages(&out));
                (out, files)
            }
            What::Completions { shell, out } => {
                let file = std::fs::create_dir_all(&out).and_then(|()| {
                    clap_complete::generate_to(shell, &mut Cli::command(), "ikelb", &out)
                });
                (out, file.map(|f| vec![f]))
            }
        };
        for f in files.with_context(|| format!("writing into {}", out.display()))? {
            println!("{}", f.display());
        }
        Ok(())
    }
}

/// What the top page says beyond the command line: where things live (with the
/// package's units), the signals, related commands.
const TOP_PAGE_TAIL: &str = r#".SH FILES
.TP
\fI/etc/ikelb/<iface>.toml\fR
The configuration of \fBikelb@<iface>.service\fR (\fBikelb run \-\-iface <iface>\fR).
.TP
\fI/etc/ikelb/member.toml\fR
The configuration of \fBikelb\-member.service\fR (\fBikelb member\fR).
.TP
\fI/run/ikelb/<iface>.sock\fR
The control socket of \fBikelb status\fR, \fBreload\fR, \fBdrain\fR and \fBundrain\fR
(a member's: \fI/run/ikelb/member\-<id>.sock\fR).
.TP
\fI/sys/fs/bpf/ikelb/<iface>/\fR
The pinned maps of the fast path while \fBikelb run\fR is active.
.SH SIGNALS
SIGINT and SIGTERM stop the daemon cleanly (the VIPs are handed over, XDP is detached
last); SIGHUP reloads the configuration, as \fBikelb reload\fR does.
.SH SEE ALSO
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBbpftool\fR(8)
"#;

/// Renders ikelb.8 and, recursively, a page per visible command (section 8: the
/// daemon and its administration) into `out`.
pub fn man_pages(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(
        cmd: clap::Command,
        top: bool,
        out: &Path,
        files: &mut Vec<PathBuf>,
    ) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub.clone(), false, out, files)?;
        }
        let man = clap_mangen::Man::new(cmd)
            .section("8")
            .source(format!("ikelb {}", env!("CARGO_PKG_VERSION")))
            .manual("System Manager's Manual");
        let path = out.join(man.get_filename());
        let mut f = std::fs::File::create(&path)?;
        man.render(&mut f)?;
        if top {
            f.write_all(TOP_PAGE_TAIL.as_bytes())?;
        }
        files.push(path);
        Ok(())
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut files = Vec::new();
    walk(cmd, true, out, &mut files)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        super::super::command().debug_assert();
    }

    #[test]
    fn a_page_per_command_in_section_8() {
        let dir = tempfile::tempdir().unwrap();
        let files = man_pages(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for n in [
            "ikelb.8",
            "ikelb-run.8",
            "ikelb-member.8",
            "ikelb-check-config.8",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert!(
            !names
                .iter()
                .any(|x| x.contains("generate") || x.contains("help"))
        );
        let top = std::fs::read_to_string(dir.path().join("ikelb.8")).unwrap();
        assert!(top.contains(".TH ikelb 8"), "{top}");
        assert!(top.contains("ikelb\\-run(8)"), "{top}");
        assert!(top.contains(".SH FILES"));
        let run = std::fs::read_to_string(dir.path().join("ikelb-run.8")).unwrap();
        assert!(
            run.contains(".TH ikelb-run 8") && run.contains("\\-\\-config"),
            "{run}"
        );
    }

    #[test]
    fn completions_name_the_commands_but_not_generate() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ikelb", &mut buf);
            let s = String::from_utf8(buf).unwrap();
            assert!(
                s.contains("check-config") && s.contains("undrain"),
                "{shell}: {s}"
            );
            assert!(!s.contains("generate"), "{shell}");
        }
    }
}
