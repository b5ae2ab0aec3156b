use super::super::Config;
use super::*;

const CLUSTER: &str = r#"
[dataplane]
iface = "eth1"

[[vip]]
address = "10.55.0.1"

[cluster]
member-id = 7
interval-ms = 100
peers = ["10.55.0.2", "10.55.0.3"]
identities = ["198.51.100.11", "gw1.example.net"]
capacity = 500
vici = "/run/charon.vici"

[[cluster.key]]
id = 1
secret = "0123456789abcdef0123"

[[cluster.key]]
id = 2
secret = "fedcba9876543210fedc"

[[vrrp]]
vrid = 51
priority = 200
interval-cs = 10
vips = ["10.55.0.1"]
checksum = "plain"
peers = ["10.55.0.2"]

[status]
metrics = "127.0.0.1:9640"
"#;

#[test]
fn parses_cluster_vrrp_and_status() {
    let c = Config::parse(CLUSTER).unwrap();
    let k = c.cluster.unwrap();
    assert_eq!(k.member_id, 7);
    assert_eq!(k.send_key, 1);
    assert_eq!(k.keys.len(), 2);
    assert_eq!(k.interval, Duration::from_millis(100));
    assert_eq!(k.holdtime, Duration::from_millis(300));
    assert_eq!(k.port, CLUSTER_PORT_DEFAULT);
    assert_eq!(k.probe, ProbeCfg::Vici("/run/charon.vici".into()));
    assert!(matches!(k.transport, Transport::Unicast(ref p) if p.len() == 2));
    assert_eq!(k.identities.len(), 2);
    let v = &c.vrrp[0];
    assert_eq!((v.vrid, v.priority, v.interval_cs), (51, 200, 10));
    assert_eq!(v.checksum, ChecksumForm::Plain);
    assert!(v.preempt);
    assert_eq!(c.status.metrics.unwrap().port(), 9640);
}

#[test]
fn member_only_config_needs_no_vip() {
    let c = Config::parse(
        "[cluster]\nmember-id = 3\nidentities = [\"192.0.2.3\"]\nsas = 12\n\
         [[cluster.key]]\nid = 1\nsecret = \"0123456789abcdef\"\n",
    )
    .unwrap();
    let k = c.cluster.unwrap();
    assert_eq!(k.probe, ProbeCfg::Fixed(12));
    assert_eq!(k.transport, Transport::Multicast(CLUSTER_GROUP_DEFAULT));
    assert!(c.vips.is_empty());
}

fn error_of(text: &str) -> String {
    Config::parse(text).unwrap_err().to_string()
}

#[test]
fn errors_name_line_and_key() {
    let base = "[[vip]]\naddress = \"10.0.0.1\"\n";
    let key = "[[cluster.key]]\nid = 1\nsecret = \"0123456789abcdef\"\n";
    let e = error_of(&format!("{base}[cluster]\nmember-id = 0\n{key}"));
    assert!(
        e.contains("line 4") && e.contains("cluster.member-id"),
        "{e}"
    );
    let e = error_of(&format!(
        "{base}[cluster]\nmember-id = 1\n[[cluster.key]]\nid = 1\nsecret = \"short\"\n"
    ));
    assert!(e.contains("line 7") && e.contains("cluster.key[0]"), "{e}");
    let e = error_of(&format!(
        "{base}[cluster]\nmember-id = 1\ngroup = \"10.1.1.1\"\n{key}"
    ));
    assert!(e.contains("line 5") && e.contains("cluster.group"), "{e}");
    let e = error_of(&format!("{base}[cluster]\nmember-id = 1\nbogus = 1\n{key}"));
    assert!(e.contains("line 5") && e.contains("bogus"), "{e}");
    let e = error_of(&format!("{base}[cluster]\nmember-id = 1\n"));
    assert!(e.contains("cluster.key"), "{e}");
    let e = error_of(&format!(
        "{base}[[vrrp]]\nvrid = 256\nvips = [\"10.0.0.1\"]\n"
    ));
    assert!(e.contains("line 4") && e.contains("vrrp[0].vrid"), "{e}");
    let e = error_of(&format!(
        "{base}[[vrrp]]\nvrid = 5\nvips = [\"10.0.0.1\"]\nchecksum = \"odd\"\n"
    ));
    assert!(
        e.contains("line 6") && e.contains("vrrp[0].checksum"),
        "{e}"
    );
    let e = error_of(&format!(
        "{base}[[vrrp]]\nvrid = 5\nvips = [\"10.0.0.1\", \"2001:db8::1\"]\n"
    ));
    assert!(e.contains("line 5") && e.contains("mixes"), "{e}");
    let e = error_of(&format!(
        "{base}[[vrrp]]\nvrid = 5\nvips = [\"10.0.0.9\"]\n"
    ));
    assert!(e.contains("no [[vip]]"), "{e}");
    let e = error_of(&format!(
        "{base}[[vrrp]]\nvrid = 5\nvips = [\"10.0.0.1\"]\n[[vrrp]]\nvrid = 5\nvips = [\"10.0.0.1\"]\n"
    ));
    assert!(e.contains("twice"), "{e}");
    let e = error_of(&format!("{base}[status]\nmetrics = \"nope\"\n"));
    assert!(e.contains("line 4") && e.contains("status.metrics"), "{e}");
    // A mixed pool: static targets beside the members, but not under a member's name.
    let mixed = format!(
        "{base}[[target]]\nname = \"a\"\nidentity = \"1.2.3.4\"\ncapacity = 300\n\
         [cluster]\nmember-id = 1\n{key}"
    );
    let c = Config::parse(&mixed).unwrap();
    assert_eq!(
        (c.targets[0].capacity, c.targets[0].target.weight),
        (300, 1)
    );
    assert!(c.cluster.is_some());
    let e = error_of(&mixed.replace("name = \"a\"", "name = \"member-3\""));
    assert!(e.contains("line 4") && e.contains("target[0].name"), "{e}");
    let e = error_of(&mixed.replace("capacity = 300", "capacity = 0"));
    assert!(e.contains("target[0].capacity"), "{e}");
}

#[test]
fn trust_rules_parse_and_refuse_the_vips() {
    let text = CLUSTER
        .replace(
            "[[vrrp]]",
            "members = [7, 8]\n\n[[cluster.member]]\nid = 8\nsources = [\"10.55.0.2\"]\n\n[[vrrp]]",
        )
        .replace(
            "capacity = 500",
            "capacity = 500\nidentity-prefixes = [\"198.51.100.0/24\", \"2001:db8::/32\"]",
        );
    let k = Config::parse(&text).unwrap().cluster.unwrap();
    assert_eq!(k.trust.key_members.get(&2), Some(&vec![7, 8]));
    assert_eq!(k.trust.key_members.get(&1), None);
    assert_eq!(
        k.trust.sources.get(&8),
        Some(&vec!["10.55.0.2".parse::<IpAddr>().unwrap()])
    );
    assert_eq!(k.trust.identity_prefixes.len(), 2);
    assert_eq!(k.trust.refused, ["10.55.0.1".parse::<IpAddr>().unwrap(); 2]);
    let e = error_of(&CLUSTER.replace(
        "capacity = 500",
        "capacity = 500\nidentity-prefixes = [\"198.51.100.0/33\"]",
    ));
    assert!(
        e.contains("cluster.identity-prefixes") && e.contains("line 14"),
        "{e}"
    );
    let e = error_of(&CLUSTER.replace("[[vrrp]]", "members = []\n\n[[vrrp]]"));
    assert!(e.contains("cluster.key[1].members"), "{e}");
    let e = error_of(&CLUSTER.replace(
        "[[vrrp]]",
        "[[cluster.member]]\nid = 8\nsources = [\"224.0.0.1\"]\n\n[[vrrp]]",
    ));
    assert!(e.contains("cluster.member[0].sources"), "{e}");
}

#[test]
fn metrics_stay_on_loopback_unless_asked() {
    let base = "[[vip]]\naddress = \"10.0.0.1\"\n[status]\n";
    let status = |extra: &str| Config::parse(&format!("{base}{extra}")).map(|c| c.status);
    let s = status("metrics = \"9640\"\n").unwrap();
    assert_eq!(s.metrics, Some("127.0.0.1:9640".parse().unwrap()));
    assert_eq!(s.limits, crate::listen::Limits::default());
    let s = status("metrics = \"[::1]:9640\"\n").unwrap();
    assert_eq!(s.metrics, Some("[::1]:9640".parse().unwrap()));
    for addr in ["0.0.0.0:9640", "[::]:9640", "192.0.2.1:9640"] {
        let e = error_of(&format!("{base}metrics = \"{addr}\"\n"));
        assert!(
            e.contains("line 4") && e.contains("status.metrics") && e.contains("metrics-remote"),
            "{e}"
        );
        let s = status(&format!("metrics = \"{addr}\"\nmetrics-remote = true\n")).unwrap();
        assert_eq!(s.metrics, Some(addr.parse().unwrap()));
    }
    let s = status("max-connections = 4\nread-timeout-ms = 250\nmax-request-line = 64\n").unwrap();
    assert_eq!(
        s.limits,
        crate::listen::Limits {
            max_connections: 4,
            read_timeout: std::time::Duration::from_millis(250),
            max_line: 64,
        }
    );
    let e = error_of(&format!("{base}max-connections = 0\n"));
    assert!(
        e.contains("line 4") && e.contains("status.max-connections"),
        "{e}"
    );
}

#[test]
fn status_group_is_resolved_when_read() {
    let base = "[[vip]]\naddress = \"10.0.0.1\"\n[status]\n";
    let s = Config::parse(&format!("{base}group = \"root\"\n"))
        .unwrap()
        .status;
    assert_eq!(
        s.group,
        Some(crate::config::Group {
            name: "root".into(),
            gid: 0
        })
    );
    let e = error_of(&format!("{base}group = \"no-such-group-ikelb\"\n"));
    assert!(
        e.contains("line 4") && e.contains("status.group") && e.contains("no such group"),
        "{e}"
    );
}

#[test]
fn load_composition_defaults_and_keys() {
    let f = Config::parse(CLUSTER).unwrap().cluster.unwrap().figures;
    assert_eq!((f.capacity, f.weight), (500, 1));
    assert_eq!((f.crypto_load_weight, f.system_load_weight), (100, 50));
    assert_eq!((f.crypto_overload_pct, f.system_overload_pct), (90, 100));
    assert_eq!((f.active_sas, f.cpu_permille, f.memory_permille), (0, 0, 0));
    assert!(!f.drain);
    let text = CLUSTER.replace(
        "capacity = 500",
        "capacity = 500\ncrypto-load-weight = 70\nsystem-load-weight = 0\n\
         crypto-overload-pct = 120\nsystem-overload-pct = 85",
    );
    let f = Config::parse(&text).unwrap().cluster.unwrap().figures;
    assert_eq!((f.crypto_load_weight, f.system_load_weight), (70, 0));
    assert_eq!((f.crypto_overload_pct, f.system_overload_pct), (120, 85));
}

#[test]
fn load_composition_errors_name_the_key() {
    let with = |extra: &str| error_of(&CLUSTER.replace("capacity = 500", extra));
    // CLUSTER's `capacity` line is line 13.
    for (extra, key) in [
        ("crypto-load-weight = 101", "cluster.crypto-load-weight"),
        ("crypto-load-weight = -1", "cluster.crypto-load-weight"),
        ("system-load-weight = 200", "cluster.system-load-weight"),
        ("crypto-overload-pct = 0", "cluster.crypto-overload-pct"),
        ("crypto-overload-pct = 1001", "cluster.crypto-overload-pct"),
        ("system-overload-pct = 0", "cluster.system-overload-pct"),
        ("system-overload-pct = 101", "cluster.system-overload-pct"),
    ] {
        let e = with(extra);
        assert!(e.contains("line 13") && e.contains(key), "{extra}: {e}");
    }
    let e = with("crypto-load-weight = 0\nsystem-load-weight = 0");
    assert!(
        e.contains("line 13")
            && e.contains("crypto-load-weight / system-load-weight")
            && e.contains("both 0"),
        "{e}"
    );
    // One weight at 0 is fine: that kind is ignored.
    assert!(Config::parse(&CLUSTER.replace("capacity = 500", "system-load-weight = 0")).is_ok());
    // The single limit of earlier versions is refused with a pointer to its successors.
    let e = with("overload-pct = 90");
    assert!(
        e.contains("line 13")
            && e.contains("cluster.overload-pct")
            && e.contains("crypto-overload-pct")
            && e.contains("system-overload-pct"),
        "{e}"
    );
}
