//! Parser for `swanctl --raw` output (vici messages printed as `name {key=value …}`).

use std::collections::BTreeMap;

/// One vici element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    List(Vec<String>),
    Section(Section),
}

/// A vici section: its entries in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section(pub Vec<(String, Value)>);

impl Section {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
    pub fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key) {
            Some(Value::Section(s)) => Some(s),
            _ => None,
        }
    }
    /// The sub-sections, by name.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.0.iter().filter_map(|(k, v)| match v {
            Value::Section(s) => Some((k.as_str(), s)),
            _ => None,
        })
    }
}

/// Parses every top-level message (`list-sa event {…}`) of `swanctl --raw` output.
/// Returns (message name, body) pairs; text it cannot parse is skipped.
pub fn parse_messages(text: &str) -> Vec<(String, Section)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(open) = line.find('{') else {
            continue;
        };
        let name = line[..open].trim().to_string();
        let mut p = Parser {
            s: line.as_bytes(),
            at: open + 1,
        };
        if let Some(body) = p.section() {
            out.push((name, body));
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn word(&mut self, stop: &[u8]) -> String {
        let start = self.at;
        while let Some(c) = self.s.get(self.at) {
            if c.is_ascii_whitespace() || stop.contains(c) {
                break;
            }
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    /// After `{`: entries up to and including the matching `}`.
    fn section(&mut self) -> Option<Section> {
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            match self.s.get(self.at)? {
                b'}' => {
                    self.at += 1;
                    return Some(Section(entries));
                }
                _ => {
                    let key = self.word(b"={}");
                    self.skip_ws();
                    match self.s.get(self.at)? {
                        b'{' => {
                            self.at += 1;
                            entries.push((key, Value::Section(self.section()?)));
                        }
                        b'=' => {
                            self.at += 1;
                            if self.s.get(self.at) == Some(&b'[') {
                                self.at += 1;
                                let mut items = Vec::new();
                                loop {
                                    self.skip_ws();
                                    if *self.s.get(self.at)? == b']' {
                                        self.at += 1;
                                        break;
                                    }
                                    items.push(self.word(b"]"));
                                }
                                entries.push((key, Value::List(items)));
                            } else {
                                entries.push((key, Value::Str(self.word(b"}"))));
                            }
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
}

/// A CHILD_SA from `--list-sas`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildSa {
    pub name: String,
    pub state: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
}

/// An IKE_SA from `--list-sas`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeSa {
    /// Connection name.
    pub name: String,
    pub state: String,
    pub local_host: String,
    pub local_port: String,
    pub remote_host: String,
    pub remote_port: String,
    pub local_id: String,
    pub remote_id: String,
    pub initiator: bool,
    pub children: Vec<ChildSa>,
    /// Every field, for checks this struct does not name.
    pub raw: BTreeMap<String, String>,
}

/// The IKE_SAs in `swanctl --list-sas --raw` output.
pub fn parse_sas(text: &str) -> Vec<IkeSa> {
    let mut sas = Vec::new();
    for (msg, body) in parse_messages(text) {
        if msg != "list-sa event" {
            continue;
        }
        for (name, sa) in body.sections() {
            let s = |k: &str| sa.str(k).unwrap_or("").to_string();
            let children = sa
                .section("child-sas")
                .map(|c| {
                    c.sections()
                        .map(|(_, ch)| ChildSa {
                            name: ch.str("name").unwrap_or("").into(),
                            state: ch.str("state").unwrap_or("").into(),
                            local_ts: ch.list("local-ts"),
                            remote_ts: ch.list("remote-ts"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let raw =
                sa.0.iter()
                    .filter_map(|(k, v)| match v {
                        Value::Str(x) => Some((k.clone(), x.clone())),
                        _ => None,
                    })
                    .collect();
            sas.push(IkeSa {
                name: name.into(),
                state: s("state"),
                local_host: s("local-host"),
                local_port: s("local-port"),
                remote_host: s("remote-host"),
                remote_port: s("remote-port"),
                local_id: s("local-id"),
                remote_id: s("remote-id"),
                initiator: sa.str("initiator") == Some("yes"),
                children,
                raw,
            });
        }
    }
    sas
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_list_sas() {
        let text = "list-sa event {vip {uniqueid=1 version=2 state=ESTABLISHED \
            local-host=10.200.0.101 local-port=4500 local-id=c1.ikelb.test \
            remote-host=10.200.0.11 remote-port=4500 remote-id=gw.ikelb.test initiator=yes \
            child-sas {svc-1 {name=svc uniqueid=1 reqid=1 state=INSTALLED \
            local-ts=[10.66.0.101/32] remote-ts=[10.77.0.1/32 fd77::1/128]}}}}\n\
            list-sas reply {}\n";
        let sas = super::parse_sas(text);
        assert_eq!(sas.len(), 1);
        let sa = &sas[0];
        assert_eq!(sa.name, "vip");
        assert_eq!(sa.state, "ESTABLISHED");
        assert_eq!(sa.remote_host, "10.200.0.11");
        assert!(sa.initiator);
        assert_eq!(sa.children.len(), 1);
        assert_eq!(sa.children[0].state, "INSTALLED");
        assert_eq!(sa.children[0].remote_ts, ["10.77.0.1/32", "fd77::1/128"]);
        assert_eq!(sa.raw["uniqueid"], "1");
    }
}
