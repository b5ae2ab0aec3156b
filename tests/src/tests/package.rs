//! The Debian package of `cargo xtask deb`: what it holds (`dpkg-deb -c`/`-I`), that
//! its binary runs from the unpacked tree, its units pass `systemd-analyze verify`
//! with the packaged binary at its place, its man pages render without a groff
//! warning, its bash completion loads, and its example configurations pass
//! `ikelb check-config` inside the unpacked tree (chroot, so their absolute paths hold).
//! `package_run` runs the daemons with the units' capabilities.
//!
//! Root only. `cargo xtask test` builds the package once and names it in `IKELB_DEB`;
//! without it the test runs `cargo xtask deb` itself (a few seconds once built).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;

use super::vrrp_keepalived::RunDir;
use crate::cmd::{self, command};
use crate::netns::unique_tag;

/// The package under test.
pub(super) fn deb() -> PathBuf {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        if let Some(p) = std::env::var_os("IKELB_DEB") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut c = Command::new(cargo);
        c.current_dir(crate::workspace_root())
            .args(["xtask", "deb"])
            .stderr(Stdio::inherit());
        let out = cmd::run(&mut c).expect("cargo xtask deb");
        // xtask prints the package's path last.
        PathBuf::from(out.lines().last().unwrap_or_default().trim())
    })
    .clone()
}

/// Fails with what to install when a tool the checks need is missing (never a skip).
pub(super) fn need_tool(tool: &str, package: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{tool}` not found: install the `{package}` package (`cargo xtask build` does)"
    );
}

/// The package unpacked (`dpkg-deb -x`) into a run directory.
pub(super) struct Unpacked {
    pub dir: RunDir,
}

impl Unpacked {
    pub(super) fn new(deb: &Path) -> Result<Self> {
        let dir = RunDir::new(&format!("pkg-{}", unique_tag()))?;
        cmd::run(command("dpkg-deb", ["-x"]).arg(deb).arg(&dir.0))?;
        Ok(Unpacked { dir })
    }

    /// `path` (absolute in the package) inside the unpacked tree.
    pub(super) fn at(&self, path: &str) -> PathBuf {
        self.dir.0.join(path.trim_start_matches('/'))
    }

    pub(super) fn unit(&self, name: &str) -> Result<String> {
        let p = self.at(&format!("/usr/lib/systemd/system/{name}"));
        std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))
    }
}

/// The values of `key=` in a unit file, in order.
pub(super) fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .collect()
}

/// Every page the package must hold: ikelb.8 and one per visible command of the real
/// command line definition.
fn expected_pages() -> BTreeSet<String> {
    let mut pages: BTreeSet<String> = lb_userspace::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("ikelb-{}.8.gz", s.get_name()))
        .collect();
    pages.insert("ikelb.8.gz".into());
    pages
}

const EXAMPLES: [&str; 3] = [
    "/etc/ikelb/cluster.toml.example",
    "/etc/ikelb/member.toml.example",
    "/etc/ikelb/static.toml.example",
];

/// `dpkg-deb -c`: (mode and owner, path) of every file.
fn listing(deb: &Path) -> Result<Vec<(String, String, String)>> {
    let out = cmd::run(command("dpkg-deb", ["-c"]).arg(deb))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            Some((
                (*t.first()?).to_string(),
                (*t.get(1)?).to_string(),
                t.last()?.trim_start_matches('.').to_string(),
            ))
        })
        .filter(|(mode, _, _)| mode.starts_with('-'))
        .collect())
}

fn check_listing(deb: &Path) -> Result<()> {
    let files = listing(deb)?;
    let mode_of = |path: &str| {
        files
            .iter()
            .find(|(_, _, p)| p == path)
            .map(|(m, o, _)| (m.as_str(), o.as_str()))
    };
    let want: Vec<(&str, &str)> = [
        ("/usr/sbin/ikelb", "-rwxr-xr-x"),
        ("/usr/lib/systemd/system/ikelb@.service", "-rw-r--r--"),
        ("/usr/lib/systemd/system/ikelb-member.service", "-rw-r--r--"),
        ("/usr/share/bash-completion/completions/ikelb", "-rw-r--r--"),
        ("/usr/share/zsh/vendor-completions/_ikelb", "-rw-r--r--"),
        (
            "/usr/share/fish/vendor_completions.d/ikelb.fish",
            "-rw-r--r--",
        ),
        ("/usr/share/doc/ikelb/copyright", "-rw-r--r--"),
        ("/usr/share/doc/ikelb/README.md", "-rw-r--r--"),
    ]
    .into_iter()
    .chain(EXAMPLES.iter().map(|e| (*e, "-rw-------")))
    .collect();
    for (path, mode) in want {
        match mode_of(path) {
            Some((m, owner)) if m == mode && owner == "0/0" => {}
            got => bail!("{path}: want {mode} root:root, package has {got:?}"),
        }
    }
    let pages: BTreeSet<String> = files
        .iter()
        .filter_map(|(_, _, p)| p.strip_prefix("/usr/share/man/man8/"))
        .map(str::to_string)
        .collect();
    let expected = expected_pages();
    if pages != expected {
        bail!("man pages: package has {pages:?}, the command line needs {expected:?}");
    }
    let stray: Vec<&str> = files
        .iter()
        .map(|(_, _, p)| p.as_str())
        .filter(|p| p.starts_with("/usr/bin/") || p.starts_with("/lib/"))
        .collect();
    if !stray.is_empty() {
        bail!("files outside the documented places: {stray:?}");
    }
    Ok(())
}

fn check_control(deb: &Path, dir: &Path) -> Result<()> {
    let f = |field: &str| cmd::run(command("dpkg-deb", ["-f"]).arg(deb).arg(field));
    let version = env!("CARGO_PKG_VERSION");
    if f("Package")?.trim() != "ikelb" || !f("Version")?.starts_with(version) {
        bail!("control: {}", f("Package")? + &f("Version")?);
    }
    if !f("Depends")?.contains("libc6") {
        bail!("control: Depends names no libc6: {}", f("Depends")?);
    }
    let conffiles = cmd::run(command("dpkg-deb", ["-I"]).arg(deb).arg("conffiles"))?;
    let listed: BTreeSet<&str> = conffiles.lines().map(str::trim).collect();
    if listed != EXAMPLES.into_iter().collect() {
        bail!("conffiles: {listed:?}, want the examples {EXAMPLES:?}");
    }
    // The maintainer scripts must at least parse.
    let control = dir.join("DEBIAN");
    cmd::run(command("dpkg-deb", ["-e"]).arg(deb).arg(&control))?;
    for s in ["postinst", "prerm", "postrm"] {
        cmd::run(command("sh", ["-n"]).arg(control.join(s)))?;
    }
    Ok(())
}

/// `systemd-analyze verify` of the units as shipped, in a private mount namespace
/// where the packaged /usr/sbin is the real one (verify checks ExecStart's binary).
fn check_units(u: &Unpacked) -> Result<()> {
    let dir = u.at("/usr/lib/systemd/system");
    let out = cmd::output(
        command("unshare", ["--mount", "sh", "-c"])
            .arg(r#"mount --bind "$1" /usr/sbin && shift && exec systemd-analyze verify --man=no "$@""#)
            .arg("sh")
            .arg(u.at("/usr/sbin"))
            .arg(dir.join("ikelb@eth1.service"))
            .arg(dir.join("ikelb-member.service")),
    )?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Other units of this machine may draw warnings; ours must draw none.
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("ikelb")).collect();
    if !out.status.success() || !ours.is_empty() {
        bail!("systemd-analyze verify ({}): {ours:#?}\n{text}", out.status);
    }
    let tpl = u.unit("ikelb@.service")?;
    let member = u.unit("ikelb-member.service")?;
    for (unit, start) in [
        (
            &tpl,
            "/usr/sbin/ikelb run --iface %I --config /etc/ikelb/%I.toml",
        ),
        (
            &member,
            "/usr/sbin/ikelb member --config /etc/ikelb/member.toml",
        ),
    ] {
        if unit_values(unit, "ExecStart") != [start] {
            bail!(
                "ExecStart: {:?}, want {start}",
                unit_values(unit, "ExecStart")
            );
        }
        for (key, value) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("PrivateTmp", "yes"),
            ("Restart", "on-failure"),
            ("RuntimeDirectory", "ikelb"),
        ] {
            if unit_values(unit, key) != [value] {
                bail!("{key}: {:?}, want {value}", unit_values(unit, key));
            }
        }
        if unit_values(unit, "ExecReload").is_empty() {
            bail!("no ExecReload");
        }
    }
    Ok(())
}

/// Each page renders with groff without a warning and carries its section-8 title.
fn check_pages(u: &Unpacked) -> Result<()> {
    for page in expected_pages() {
        let gz = u.at(&format!("/usr/share/man/man8/{page}"));
        let roff = cmd::output(command("gzip", ["-dc"]).arg(&gz))?.stdout;
        let name = page.trim_end_matches(".8.gz");
        if !String::from_utf8_lossy(&roff).contains(&format!(".TH {name} 8")) {
            bail!("{page}: no `.TH {name} 8` header");
        }
        let mut g = command("groff", ["-man", "-Tutf8", "-ww", "-P-cbou"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn groff")?;
        g.stdin.take().context("groff stdin")?.write_all(&roff)?;
        let out = g.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !out.stderr.is_empty() || !text.contains("SYNOPSIS") {
            bail!(
                "{page}: groff {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// bash loads its completion and binds it to `ikelb`; zsh's and fish's name it too.
fn check_completions(u: &Unpacked) -> Result<()> {
    let bash = u.at("/usr/share/bash-completion/completions/ikelb");
    let bound = cmd::run(
        command(
            "bash",
            ["-c", r#"source "$1" && complete -p ikelb"#, "bash"],
        )
        .arg(&bash),
    )?;
    if !bound.contains("ikelb") {
        bail!("bash completion not bound: {bound}");
    }
    for (file, marker) in [
        ("/usr/share/zsh/vendor-completions/_ikelb", "#compdef ikelb"),
        (
            "/usr/share/fish/vendor_completions.d/ikelb.fish",
            "complete -c ikelb",
        ),
        (
            "/usr/share/bash-completion/completions/ikelb",
            "check-config",
        ),
    ] {
        let text = std::fs::read_to_string(u.at(file))?;
        if !text.contains(marker) || !text.contains("undrain") {
            bail!("{file}: no `{marker}` or no `undrain`");
        }
    }
    Ok(())
}

/// The shared libraries of the binary, copied into the tree so it runs chrooted.
fn copy_libraries(u: &Unpacked, bin: &Path) -> Result<()> {
    let ldd = cmd::run(&mut command("ldd", [bin]))?;
    for lib in ldd
        .lines()
        .filter_map(|l| l.split_whitespace().find(|t| t.starts_with('/')))
    {
        let dst = u.at(lib);
        std::fs::create_dir_all(dst.parent().context("library path")?)?;
        std::fs::copy(lib, &dst).with_context(|| format!("copy {lib}"))?;
    }
    Ok(())
}

/// The examples pass `ikelb check-config` where they are installed: chrooted into the
/// tree, with the cluster key their comments tell the administrator to create.
fn check_examples(u: &Unpacked) -> Result<()> {
    let bin = u.at("/usr/sbin/ikelb");
    copy_libraries(u, &bin)?;
    let key = u.at("/etc/ikelb/cluster.key");
    std::fs::write(&key, "c2VjcmV0IGtleSBvZiB0aGUgcGFja2FnZSB0ZXN0Lgo=\n")?;
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    for e in EXAMPLES {
        let out = cmd::output(
            command("chroot", [u.dir.0.as_os_str()])
                .args(["/usr/sbin/ikelb", "check-config", e])
                .env(
                    "LD_LIBRARY_PATH",
                    "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64",
                )
                .env("NO_COLOR", "1"),
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !stdout.contains(": OK") || stderr.contains("WARN") {
            bail!("check-config {e} ({}): {stdout}{stderr}", out.status);
        }
    }
    Ok(())
}

#[test]
fn package_holds_binary_units_pages_completions_and_configs() {
    super::ops_net::need_root();
    for (tool, pkg) in [
        ("dpkg-deb", "dpkg"),
        ("systemd-analyze", "systemd"),
        ("groff", "groff-base"),
        ("unshare", "util-linux"),
        ("bash", "bash"),
    ] {
        need_tool(tool, pkg);
    }
    let deb = deb();
    check_listing(&deb).unwrap();
    let u = Unpacked::new(&deb).unwrap();
    check_control(&deb, &u.dir.0).unwrap();
    let v = cmd::run(Command::new(u.at("/usr/sbin/ikelb")).arg("--version")).unwrap();
    assert_eq!(v.trim(), format!("ikelb {}", env!("CARGO_PKG_VERSION")));
    check_units(&u).unwrap();
    check_pages(&u).unwrap();
    check_completions(&u).unwrap();
    check_examples(&u).unwrap();
}
