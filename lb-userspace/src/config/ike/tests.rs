use super::*;
use crate::config::Config;

const AUTH: &str = r#"
[[vip]]
address = "192.0.2.1"
redirect = "auth"

[[vip]]
address = "2001:db8::1"
redirect = "auth"
auth_redirect = "ike_auth"

[[vip]]
address = "192.0.2.2"

[[target]]
name = "gw1"
identity = "198.51.100.11"

[ike]
identity = "vpn.example.net"

[[ike.peer]]
id = "alice@example.net"
psk = "alice's long secret"

[[ike.peer]]
id = "@bob.example.net"
psk = "0x0102ff0102ff0102ff0102ff0102ff01"
"#;

#[test]
fn parses_ike_and_methods() {
    let c = Config::parse(AUTH).unwrap();
    let ike = &c.ike;
    assert_eq!(
        ike.identity,
        Some(IkeIdentity::Fqdn("vpn.example.net".into()))
    );
    assert_eq!(ike.peers.len(), 2);
    assert_eq!(
        ike.peers[0].id,
        IkeIdentity::Rfc822("alice@example.net".into())
    );
    assert_eq!(
        &ike.peers[0].psk.as_ref().unwrap().0[..],
        b"alice's long secret"
    );
    assert_eq!(ike.peers[1].id, IkeIdentity::Fqdn("bob.example.net".into()));
    assert_eq!(
        &ike.peers[1].psk.as_ref().unwrap().0[..],
        &[
            1, 2, 0xff, 1, 2, 0xff, 1, 2, 0xff, 1, 2, 0xff, 1, 2, 0xff, 1
        ]
    );
    assert_eq!(
        ike.auth_redirect("192.0.2.1".parse().unwrap()),
        Some(AuthRedirect::Informational)
    );
    assert_eq!(
        ike.auth_redirect("2001:db8::1".parse().unwrap()),
        Some(AuthRedirect::IkeAuth)
    );
    assert_eq!(ike.auth_redirect("192.0.2.2".parse().unwrap()), None);
    assert!(!format!("{c:?}").contains("secret"), "keys are redacted");
}

#[test]
fn psk_file() {
    let dir = std::env::temp_dir().join(format!("ikelb-psk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("k");
    std::fs::write(&f, "from a file, long enough\n").unwrap();
    let text = format!(
        "[[vip]]\naddress = \"192.0.2.1\"\nredirect = \"auth\"\n[ike]\nidentity = \"10.0.0.1\"\n\
         [[ike.peer]]\nid = \"c.example\"\npsk-file = \"{}\"\n",
        f.display()
    );
    let c = Config::parse(&text).unwrap();
    assert_eq!(
        &c.ike.peers[0].psk.as_ref().unwrap().0[..],
        b"from a file, long enough"
    );
    assert_eq!(
        c.ike.identity,
        Some(IkeIdentity::Ip("10.0.0.1".parse().unwrap()))
    );
    std::fs::remove_file(&f).unwrap();
    let e = Config::parse(&text).unwrap_err().to_string();
    assert!(e.contains("line 8") && e.contains("psk-file"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn error_of(text: &str) -> String {
    Config::parse(text).unwrap_err().to_string()
}

/// A key long enough for the default minimum.
const LONG: &str = "sixteen bytes ok";

#[test]
fn psk_minimum_length() {
    let head = "[[vip]]\naddress = \"192.0.2.1\"\nredirect = \"auth\"\n[ike]\nidentity = \"gw\"\n";
    let peer = "[[ike.peer]]\nid = \"alice@example.net\"\npsk = \"ten bytes!\"\n";
    let e = error_of(&format!("{head}{peer}"));
    assert!(
        e.contains("line 8")
            && e.contains("ike.peer[0].psk")
            && e.contains("alice@example.net")
            && e.contains("10 bytes, at least 16"),
        "{e}"
    );
    let c = Config::parse(&format!("{head}psk-min-length = 8\n{peer}")).unwrap();
    assert_eq!(c.ike.peers.len(), 1);
    let e = error_of(&format!("{head}psk-min-length = 4\n{peer}"));
    assert!(
        e.contains("line 6") && e.contains("ike.psk-min-length"),
        "{e}"
    );
    Config::parse(&format!(
        "{head}[[ike.peer]]\nid = \"a@b\"\npsk = \"{LONG}\"\n"
    ))
    .unwrap();
}

#[test]
fn secret_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ikelb-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (k, conf) = (dir.join("k"), dir.join("ikelb.toml"));
    std::fs::write(&k, format!("{LONG}\n")).unwrap();
    let chmod = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let text = |strict: bool| {
        format!(
            "[security]\nstrict-permissions = {strict}\n[[vip]]\naddress = \"192.0.2.1\"\n\
             redirect = \"auth\"\n[ike]\nidentity = \"gw\"\n[[ike.peer]]\nid = \"c.example\"\n\
             psk-file = \"{}\"\n",
            k.display()
        )
    };
    chmod(&k, 0o600);
    assert!(Config::parse(&text(true)).unwrap().warnings.is_empty());
    // Readable by the group: a warning, or with strict-permissions an error.
    chmod(&k, 0o640);
    let c = Config::parse(&text(false)).unwrap();
    assert!(
        c.warnings.len() == 1 && c.warnings[0].contains("mode 0640"),
        "{:?}",
        c.warnings
    );
    let e = error_of(&text(true));
    assert!(
        e.contains("line 10") && e.contains("ike.peer[0].psk-file") && e.contains("0640"),
        "{e}"
    );
    // The configuration file itself, which may hold keys.
    chmod(&k, 0o600);
    std::fs::write(&conf, text(true)).unwrap();
    chmod(&conf, 0o604);
    let e = Config::load(&conf).unwrap_err().to_string();
    assert!(e.contains("ikelb.toml") && e.contains("0604"), "{e}");
    std::fs::write(&conf, text(false)).unwrap();
    assert_eq!(Config::load(&conf).unwrap().warnings.len(), 1);
    chmod(&conf, 0o600);
    assert!(Config::load(&conf).unwrap().warnings.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_name_line_and_key() {
    let vip = "[[vip]]\naddress = \"192.0.2.1\"\nredirect = \"auth\"\n";
    let e = error_of(vip);
    assert!(e.contains("line 3") && e.contains("vip[0].redirect"), "{e}");
    let e = error_of(&format!("{vip}[ike]\nidentity = \"gw\"\n"));
    assert!(e.contains("[[ike.peer]]"), "{e}");
    let e = error_of(&format!(
        "{vip}auth-redirect = \"sometimes\"\n[ike]\nidentity = \"gw\"\n"
    ));
    assert!(
        e.contains("line 4") && e.contains("vip[0].auth-redirect"),
        "{e}"
    );
    let e = error_of("[[vip]]\naddress = \"192.0.2.1\"\nauth-redirect = \"ike_auth\"\n");
    assert!(e.contains("line 3") && e.contains("only for"), "{e}");
    let peer = "[ike]\nidentity = \"gw\"\n[[ike.peer]]\nid = \"a.example\"\n";
    let e = error_of(&format!("{vip}{peer}"));
    assert!(e.contains("line 7") && e.contains("exactly one"), "{e}");
    let e = error_of(&format!("{vip}{peer}psk = \"0xabc\"\n"));
    assert!(e.contains("line 8") && e.contains("ike.peer[0].psk"), "{e}");
    let e = error_of(&format!("{vip}{peer}psk = \"\"\n"));
    assert!(e.contains("empty"), "{e}");
    let e = error_of(&format!(
        "{vip}[ike]\nidentity = \"gw\"\n[[ike.peer]]\nid = \"a.example\"\npsk = \"{LONG}\"\n\
         [[ike.peer]]\nid = \"a.example\"\npsk = \"{LONG}\"\n"
    ));
    assert!(e.contains("line 10") && e.contains("twice"), "{e}");
    let e = error_of(&format!("{vip}[ike]\nidentity = \"cn=x, =y\"\n"));
    assert!(e.contains("line 5") && e.contains("ike.identity"), "{e}");
    let e = error_of(&format!("{vip}[ike]\nbogus = 1\n"));
    assert!(e.contains("line 5") && e.contains("bogus"), "{e}");
}

#[test]
fn limits_are_applied_and_checked() {
    let text = format!(
        "{AUTH}[ike.limits]\nhalf-open-per-source = 4\nstate-memory-mib = 8\n\
         cookie-threshold = 0\n"
    );
    let c = Config::parse(&text).unwrap();
    let chooser = Box::new(|_: IpAddr| None);
    let rc = c.ike.responder_config(&c.vips, chooser, false);
    assert_eq!(rc.half_open_per_source, 4);
    assert_eq!(rc.state_memory_max, 8 << 20);
    assert_eq!(rc.cookie_threshold, 0);
    // Unset: the responder's defaults.
    assert_eq!(rc.half_open_max, 10_000);
    let e = error_of(&format!("{AUTH}[ike.limits]\nhalf-open-max = 0\n"));
    let line = AUTH.lines().count() + 2;
    assert!(
        e.contains(&format!("line {line}")) && e.contains("ike.limits.half-open-max"),
        "{e}"
    );
    let e = error_of(&format!("{AUTH}[ike.limits]\nhalf-open = 3\n"));
    assert!(e.contains("half-open"), "{e}");
    // SHA-1 signatures: off unless asked for.
    assert!(!rc.allow_sha1);
    let c = Config::parse(&AUTH.replace("[ike]\n", "[ike]\nallow-sha1 = true\n")).unwrap();
    let rc = c
        .ike
        .responder_config(&c.vips, Box::new(|_: IpAddr| None), false);
    assert!(rc.allow_sha1);
}

#[test]
fn identities() {
    assert_eq!(
        parse_ike_identity("192.0.2.9").unwrap(),
        IkeIdentity::Ip("192.0.2.9".parse().unwrap())
    );
    assert_eq!(
        parse_ike_identity("@gw").unwrap(),
        IkeIdentity::Fqdn("gw".into())
    );
    assert!(parse_ike_identity("").is_err());
    assert!(parse_ike_identity("@").is_err());
    assert!(parse_ike_identity("a@").is_err());
    assert!(parse_ike_identity("a@b@c").is_err());
}
